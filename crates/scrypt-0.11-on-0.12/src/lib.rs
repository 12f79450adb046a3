//! scrypt 0.11's interface, as the age crate 0.12 calls it, answered by RustCrypto scrypt 0.12.
//!
//! age 0.12.1 (the newest release) depends on scrypt 0.11, whose Salsa20/8 is scalar; scrypt
//! 0.12 has an SSE2 block mix and derives the same bytes with about a quarter less CPU
//! (BENCHMARKS.md: a passphrase bundle, work factor 2^18, against the `age` command). The
//! workspace patches scrypt 0.11 with this crate; nothing else depends on it.
//!
//! Only what age uses is here: [`Params::new`] with 0.11's checks, [`scrypt`], and
//! [`errors`]. The derivation itself is scrypt 0.12's, unchanged.

/// The error types, scrypt 0.12's (the same unit structs 0.11 had).
pub mod errors {
    pub use scrypt012::errors::{InvalidOutputLen, InvalidParams};
}

use errors::{InvalidOutputLen, InvalidParams};

/// scrypt's cost parameters: N = 2^`log_n`, block size `r`, parallelism `p`.
#[derive(Clone, Copy, Debug)]
pub struct Params(scrypt012::Params);

impl Params {
    /// scrypt 0.11's constructor: the checks of 0.12's `Params::new`, plus the two 0.11
    /// made and 0.12 dropped (`len` in 10..=64 bytes; `log_n < 16 * r`), so that what 0.11
    /// refused is still refused.
    ///
    /// # Errors
    /// [`InvalidParams`] when a parameter is outside those bounds.
    pub fn new(log_n: u8, r: u32, p: u32, len: usize) -> Result<Params, InvalidParams> {
        if !(10..=64).contains(&len) || u64::from(log_n) >= u64::from(r) * 16 {
            return Err(InvalidParams);
        }
        scrypt012::Params::new(log_n, r, p).map(Params)
    }
}

/// Derives `output.len()` bytes from `password` and `salt` (RFC 7914), as scrypt 0.12 does.
///
/// # Errors
/// [`InvalidOutputLen`] when `output` is empty or longer than (2^32 - 1) * 32 bytes.
pub fn scrypt(
    password: &[u8],
    salt: &[u8],
    params: &Params,
    output: &mut [u8],
) -> Result<(), InvalidOutputLen> {
    scrypt012::scrypt(password, salt, &params.0, output)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One RFC 7914 test vector: password, salt, log2 N, r, p, the 64 bytes in hex.
    type Vector = (&'static [u8], &'static [u8], u8, u32, u32, &'static str);

    /// RFC 7914 section 12, the vectors small enough for a test: N = 16 and N = 1024.
    #[test]
    fn rfc_7914_vectors() {
        let cases: [Vector; 2] = [
            (
                b"",
                b"",
                4,
                1,
                1,
                "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442\
                 fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906",
            ),
            (
                b"password",
                b"NaCl",
                10,
                8,
                16,
                "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162\
                 2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640",
            ),
        ];
        for (password, salt, log_n, r, p, expected) in cases {
            let params = Params::new(log_n, r, p, 64).expect("RFC parameters are valid");
            let mut out = [0u8; 64];
            scrypt(password, salt, &params, &mut out).expect("64 bytes is a valid length");
            let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex, expected);
        }
    }

    #[test]
    fn what_0_11_refused_is_refused() {
        assert!(Params::new(18, 8, 1, 9).is_err());
        assert!(Params::new(18, 8, 1, 65).is_err());
        assert!(Params::new(16, 1, 1, 32).is_err());
        assert!(Params::new(18, 0, 1, 32).is_err());
        assert!(Params::new(18, 8, 0, 32).is_err());
        assert!(Params::new(18, 8, 1, 32).is_ok());
    }
}
