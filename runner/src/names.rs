//! Container identity: 64-hex-digit ids, their 12-digit short form, docker's
//! name rules (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`) and generated `adjective_noun`
//! names for containers started without `--name`.

use crate::error::NameError;

/// Length of the short id `ps` prints and the default hostname.
pub const SHORT_ID_LEN: usize = 12;

/// A fresh random container id: 32 random bytes as 64 lower-case hex digits.
pub(crate) fn new_id() -> Result<String, NameError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| NameError::Random {
        source: std::io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(libc::EIO)),
    })?;
    let mut id = String::with_capacity(64);
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    // Docker avoids all-digit short ids (they read as numbers); so do we.
    if id[..SHORT_ID_LEN].bytes().all(|b| b.is_ascii_digit()) {
        return new_id();
    }
    Ok(id)
}

/// The first 12 hex digits of an id, as `ps` shows it.
pub fn short_id(id: &str) -> &str {
    &id[..id.len().min(SHORT_ID_LEN)]
}

/// True when `s` has the shape of a full container id.
pub(crate) fn is_full_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Checks a user-chosen container (or volume) name against docker's rule:
/// at least two characters, the first alphanumeric, the rest alphanumeric or
/// `_`, `.`, `-`. A leading `/` (docker's internal form) is accepted and
/// dropped.
pub fn validate_name(name: &str) -> Result<String, NameError> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let mut chars = bare.chars();
    let ok = match chars.next() {
        Some(first) if first.is_ascii_alphanumeric() => {
            bare.len() >= 2
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        }
        _ => false,
    };
    if ok {
        Ok(bare.to_string())
    } else {
        Err(NameError::Invalid {
            name: name.to_string(),
        })
    }
}

const ADJECTIVES: &[&str] = &[
    "agile", "amber", "ample", "brave", "breezy", "bright", "brisk", "calm", "candid", "cheerful",
    "civic", "clever", "cosmic", "crisp", "curious", "daring", "dazzling", "deft", "devoted",
    "eager", "earnest", "elated", "epic", "fearless", "fervent", "festive", "fluent", "focused",
    "frank", "gallant", "gentle", "gifted", "glowing", "golden", "graceful", "hardy", "hearty",
    "honest", "humble", "jolly", "jovial", "keen", "kind", "lively", "loyal", "lucid", "lucky",
    "mellow", "merry", "mighty", "modest", "nimble", "noble", "patient", "placid", "plucky",
    "polite", "proud", "quick", "quiet", "radiant", "rapid", "ready", "robust", "rosy", "serene",
    "sharp", "shiny", "silent", "sleek", "smooth", "snappy", "solid", "spry", "stable", "steady",
    "stoic", "sturdy", "sunny", "swift", "tender", "tidy", "tranquil", "trusty", "upbeat",
    "valiant", "vibrant", "vivid", "warm", "wise", "witty", "zealous", "zesty",
];

const NOUNS: &[&str] = &[
    "anvil",
    "aurora",
    "badger",
    "basalt",
    "beacon",
    "bellows",
    "birch",
    "bison",
    "boulder",
    "brook",
    "canyon",
    "cedar",
    "cinder",
    "comet",
    "condor",
    "coral",
    "crane",
    "crucible",
    "delta",
    "dune",
    "ember",
    "falcon",
    "fern",
    "firebrick",
    "fjord",
    "flint",
    "forge",
    "fox",
    "furnace",
    "geyser",
    "glacier",
    "granite",
    "harbor",
    "hawk",
    "heron",
    "ibex",
    "ingot",
    "island",
    "jasper",
    "juniper",
    "kestrel",
    "lagoon",
    "lantern",
    "larch",
    "lynx",
    "magma",
    "maple",
    "marten",
    "meadow",
    "meteor",
    "mica",
    "nebula",
    "oak",
    "obsidian",
    "orca",
    "osprey",
    "otter",
    "pebble",
    "pine",
    "plateau",
    "prairie",
    "puffin",
    "quartz",
    "quarry",
    "raven",
    "reef",
    "ridge",
    "river",
    "saffron",
    "sequoia",
    "shale",
    "slate",
    "spark",
    "spruce",
    "summit",
    "tern",
    "thistle",
    "tundra",
    "valley",
    "walrus",
    "willow",
    "wren",
    "yarrow",
    "zephyr",
];

/// A generated `adjective_noun` name not rejected by `taken`. After a few
/// collisions a digit is appended, as docker does.
pub(crate) fn generate_name(mut taken: impl FnMut(&str) -> bool) -> Result<String, NameError> {
    for attempt in 0..64u32 {
        let mut r = [0u8; 5];
        getrandom::fill(&mut r).map_err(|e| NameError::Random {
            source: std::io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
        let a = ADJECTIVES[(usize::from(r[0]) << 8 | usize::from(r[1])) % ADJECTIVES.len()];
        let n = NOUNS[(usize::from(r[2]) << 8 | usize::from(r[3])) % NOUNS.len()];
        let mut name = format!("{a}_{n}");
        if attempt >= 8 {
            name.push_str(&(r[4] % 10).to_string());
        }
        if !taken(&name) {
            return Ok(name);
        }
    }
    Err(NameError::Exhausted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_digits_and_unique() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert!(is_full_id(&a), "{a}");
        assert_ne!(a, b);
        assert_eq!(short_id(&a).len(), 12);
        assert!(!short_id(&a).bytes().all(|c| c.is_ascii_digit()));
    }

    #[test]
    fn docker_name_rules() {
        for ok in ["web", "my-app_1.2", "a1", "/web", "9lives"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        assert_eq!(validate_name("/web").unwrap(), "web");
        for bad in [
            "", "a", "_web", "-web", ".web", "web app", "wéb", "web/1", "web:1",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn generated_names_are_valid_and_avoid_taken_ones() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let name = generate_name(|n| seen.contains(n)).unwrap();
            assert!(validate_name(&name).is_ok(), "{name}");
            assert!(name.contains('_'));
            assert!(seen.insert(name));
        }
    }

    #[test]
    fn generation_gives_up_when_everything_is_taken() {
        assert!(matches!(generate_name(|_| true), Err(NameError::Exhausted)));
    }

    #[test]
    fn word_lists_are_valid_name_parts() {
        for w in ADJECTIVES.iter().chain(NOUNS) {
            assert!(w.bytes().all(|b| b.is_ascii_lowercase()), "{w}");
        }
    }
}
