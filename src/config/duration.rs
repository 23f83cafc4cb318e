//! Durations as the config and the provisioning API write them: whole
//! seconds (`*_secs`) or milliseconds (`*_ms`), integers both ways, so
//! that code holds a `Duration` while stored entries and API bodies keep
//! the numbers they always had.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::time::Duration;

/// `*_secs`: whole seconds.
pub mod secs {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        d.as_secs().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// An optional `*_secs`.
pub mod opt_secs {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        d.map(|d| d.as_secs()).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|s| s.map(Duration::from_secs))
    }
}

/// `*_ms`: whole milliseconds.
pub mod millis {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        // A config duration fits in u64 milliseconds (it was read as one).
        u64::try_from(d.as_millis())
            .unwrap_or(u64::MAX)
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct T {
        #[serde(with = "secs")]
        a_secs: Duration,
        #[serde(with = "millis")]
        b_ms: Duration,
        #[serde(default, with = "opt_secs")]
        c_secs: Option<Duration>,
    }

    #[test]
    fn the_numbers_read_and_written_are_the_same() {
        let json = r#"{"a_secs":30,"b_ms":250,"c_secs":null}"#;
        let t: T = serde_json::from_str(json).unwrap();
        assert_eq!(t.a_secs, Duration::from_secs(30));
        assert_eq!(t.b_ms, Duration::from_millis(250));
        assert_eq!(t.c_secs, None);
        assert_eq!(serde_json::to_string(&t).unwrap(), json);
        let t: T = serde_json::from_str(r#"{"a_secs":1,"b_ms":0,"c_secs":600}"#).unwrap();
        assert_eq!(t.c_secs, Some(Duration::from_secs(600)));
        let missing: T = serde_json::from_str(r#"{"a_secs":1,"b_ms":0}"#).unwrap();
        assert_eq!(missing.c_secs, None);
        assert!(serde_json::from_str::<T>(r#"{"a_secs":-1,"b_ms":0}"#).is_err());
    }
}
