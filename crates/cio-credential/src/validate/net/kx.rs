//! ECDHE over P-521 (secp521r1) for validate's TLS client: Go 1.19 (restic) offers X25519,
//! P-256, P-384 and P-521, in that order; ring offers the first three, and neither of rustls's
//! providers (ring, aws-lc-rs) implements the fourth. A server that allows only P-521 key
//! exchange then refused cio's hello while restic connected.
//!
//! Rules:
//! - offered last, as Go offers it: a server that allows another of Go's groups uses that;
//! - the arithmetic is RustCrypto's `p521` (its ECDH); this module only frames it for TLS:
//!   the public key is the uncompressed SEC1 point (RFC 8446 4.2.8.2, RFC 8422 5.4.1), a
//!   peer's key in another form is refused as TLS asks, and the shared secret is the
//!   x-coordinate, 66 bytes (RFC 8446 7.4.2).

use p521::ecdh::EphemeralSecret;
use p521::elliptic_curve::rand_core::OsRng;
use p521::elliptic_curve::sec1::ToEncodedPoint;
use rustls::crypto::{ActiveKeyExchange, SharedSecret, SupportedKxGroup};
use rustls::{Error, NamedGroup, PeerMisbehaved};

/// The length of an uncompressed P-521 point: the tag 0x04 and two 66-byte coordinates.
const POINT_LEN: usize = 1 + 2 * 66;

/// The P-521 key-exchange group.
#[derive(Debug)]
pub(crate) struct Secp521r1;

/// The group, to add to a provider's `kx_groups`.
pub(crate) static SECP521R1: &dyn SupportedKxGroup = &Secp521r1;

impl SupportedKxGroup for Secp521r1 {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let secret = EphemeralSecret::random(&mut OsRng);
        let public = secret
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        Ok(Box::new(Exchange { secret, public }))
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::secp521r1
    }
}

/// One key exchange in progress: our ephemeral secret and the public key sent.
struct Exchange {
    secret: EphemeralSecret,
    public: Vec<u8>,
}

impl ActiveKeyExchange for Exchange {
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, Error> {
        if peer.len() != POINT_LEN || peer.first() != Some(&0x04) {
            return Err(PeerMisbehaved::InvalidKeyShare.into());
        }
        // Decoding checks that the point is on the curve (and not the identity).
        let peer = p521::PublicKey::from_sec1_bytes(peer)
            .map_err(|_| Error::from(PeerMisbehaved::InvalidKeyShare))?;
        let shared = self.secret.diffie_hellman(&peer);
        Ok(SharedSecret::from(shared.raw_secret_bytes().as_slice()))
    }

    fn pub_key(&self) -> &[u8] {
        &self.public
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::secp521r1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_sides_agree_and_a_malformed_share_is_refused() {
        let a = Secp521r1.start().unwrap();
        let b = Secp521r1.start().unwrap();
        assert_eq!(a.pub_key().len(), POINT_LEN);
        let b_pub = b.pub_key().to_vec();
        let a_pub = a.pub_key().to_vec();
        let ab = a.complete(&b_pub).unwrap();
        let ba = b.complete(&a_pub).unwrap();
        assert_eq!(ab.secret_bytes(), ba.secret_bytes());
        assert_eq!(ab.secret_bytes().len(), 66);
        // A compressed point, and bytes off the curve.
        let c = Secp521r1.start().unwrap();
        assert!(c.complete(&a_pub[..67]).is_err());
        let mut off = a_pub.clone();
        off[POINT_LEN - 1] ^= 1;
        assert!(Secp521r1.start().unwrap().complete(&off).is_err());
    }
}
