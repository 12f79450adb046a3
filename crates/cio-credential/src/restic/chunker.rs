//! The check restic 0.14 makes of a repository's chunker polynomial when it loads `config`
//! (`restic.LoadConfig`: "invalid chunker polynomial"): `Pol.Irreducible` of
//! github.com/restic/chunker v0.4.0, Ben-Or's test over GF(2), ported operation for operation.
//!
//! Written here rather than taken from a crate: no crate offers chunker's exact answers, and
//! they matter more than mathematical ones — restic calls 0, 1 and `x` irreducible (their
//! degree is below 2, so the test's loop never runs) and accepts them. The port is small
//! (polynomials are bit sets in a `u64`), pure, and checked against polynomials real restic
//! repositories hold and against reducible ones.

/// A polynomial over GF(2): bit `i` is the coefficient of `x^i`.
type Pol = u64;

/// The degree; -1 for zero (`Pol.Deg`).
fn deg(x: Pol) -> i32 {
    63 - i32::try_from(x.leading_zeros()).unwrap_or(64)
}

/// The remainder of `x / d` (`Pol.Mod`); `d` is never zero here.
fn modulo(mut x: Pol, d: Pol) -> Pol {
    if x == 0 || d == 0 {
        return x;
    }
    let dd = deg(d);
    let mut diff = deg(x) - dd;
    while diff >= 0 {
        x ^= d << diff;
        diff = deg(x) - dd;
    }
    x
}

/// `x * f mod g` (`Pol.MulMod`), one shifted addition per set bit of `f`.
fn mul_mod(x: Pol, f: Pol, g: Pol) -> Pol {
    if x == 0 || f == 0 {
        return 0;
    }
    let mut res = 0;
    for i in 0..=deg(f) {
        if f & (1 << i) != 0 {
            let mut a = x;
            for _ in 0..i {
                a = modulo(a << 1, g);
            }
            res = modulo(res ^ a, g);
        }
    }
    res
}

/// `x^(2^p) + x mod g` (chunker's `qp`).
fn qp(p: i32, g: Pol) -> Pol {
    let mut res: Pol = 2;
    for _ in 0..p {
        res = mul_mod(res, res, g);
    }
    modulo(res ^ 2, g)
}

/// The greatest common divisor (`Pol.GCD`).
fn gcd(mut x: Pol, mut f: Pol) -> Pol {
    loop {
        if f == 0 {
            return x;
        }
        if x == 0 {
            return f;
        }
        if deg(x) < deg(f) {
            std::mem::swap(&mut x, &mut f);
        }
        let r = modulo(x, f);
        x = f;
        f = r;
    }
}

/// Whether restic 0.14 accepts `x` as a repository's chunker polynomial.
pub(crate) fn irreducible(x: Pol) -> bool {
    (1..=deg(x) / 2).all(|i| gcd(x, qp(i, x)) == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_as_restic_chunker_does() {
        // restic's own test polynomial and one from a real `restic init`.
        assert!(irreducible(0x3DA3358B4DC173));
        assert!(irreducible(0x357393e1460b7b));
        // (x+1)^2 = x^2 + 1; x^3 + x^2 + x + 1 = (x+1)^3; an even one (x divides it).
        assert!(!irreducible(0b101));
        assert!(!irreducible(0b1111));
        assert!(!irreducible(0x3DA3358B4DC172));
        // x^2 + x + 1 and x^3 + x + 1 are irreducible.
        assert!(irreducible(0b111));
        assert!(irreducible(0b1011));
        // chunker's quirk: degree below 2 passes.
        assert!(irreducible(0) && irreducible(1) && irreducible(2));
    }
}
