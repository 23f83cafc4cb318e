//! Constant-time comparison of secrets (bearer tokens, digest responses,
//! nonce MACs, webhook signatures), so that response timing does not tell
//! how much of a guess was right.

/// True when `a` and `b` are equal; the time taken depends only on their
/// lengths.
pub fn eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn equal_only_when_equal() {
        assert!(super::eq(b"abc", b"abc"));
        assert!(!super::eq(b"abc", b"abd"));
        assert!(!super::eq(b"abc", b"ab"));
        assert!(super::eq(b"", b""));
    }
}
