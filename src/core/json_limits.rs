//! A bound on what parsing untrusted JSON may cost in memory, checked before parsing.
//!
//! A size cap alone does not bound memory: `["a","a",…]` is four bytes per string, and each
//! parsed `String` costs a 24-byte header plus a heap allocation, so 64 MiB of it becomes more
//! than 800 MiB. Counting the document's values first (scalars, arrays, objects and object
//! keys), without building any of them, bounds the parsed form too: parsing is only attempted
//! when the count is within a limit the caller derives from its memory budget.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// Bytes of a parsed document per JSON value, at most, for the structures the engines parse
/// (a `String` of a few bytes: 24-byte header plus a 32-byte allocation).
pub const BYTES_PER_VALUE: u64 = 56;

/// Why a document was refused before parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonLimitError {
    #[error(
        "holds more than {limit} JSON values (at most {limit} are read, about {BYTES_PER_VALUE} bytes of memory each)"
    )]
    TooManyValues { limit: u64 },
    #[error("is not valid JSON: {0}")]
    Invalid(String),
}

/// Counts the JSON values of `bytes`, allocating nothing per value; more than `limit` is an
/// error (as soon as it is seen), as is invalid JSON. Nesting deeper than serde_json's limit
/// (128) is invalid.
pub fn count_values(bytes: &[u8], limit: u64) -> Result<u64, JsonLimitError> {
    let mut count = 0u64;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let counted = Counter {
        count: &mut count,
        limit,
    }
    .deserialize(&mut deserializer)
    .and_then(|()| deserializer.end());
    match counted {
        Ok(()) => Ok(count),
        Err(_) if count > limit => Err(JsonLimitError::TooManyValues { limit }),
        Err(err) => Err(JsonLimitError::Invalid(err.to_string())),
    }
}

struct Counter<'a> {
    count: &'a mut u64,
    limit: u64,
}

impl Counter<'_> {
    fn bump<E: de::Error>(&mut self) -> Result<(), E> {
        *self.count += 1;
        if *self.count > self.limit {
            return Err(E::custom("too many values"));
        }
        Ok(())
    }

    fn nested(&mut self) -> Counter<'_> {
        Counter {
            count: &mut *self.count,
            limit: self.limit,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Counter<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Counter<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(mut self, _: bool) -> Result<(), E> {
        self.bump()
    }

    fn visit_i64<E: de::Error>(mut self, _: i64) -> Result<(), E> {
        self.bump()
    }

    fn visit_u64<E: de::Error>(mut self, _: u64) -> Result<(), E> {
        self.bump()
    }

    fn visit_f64<E: de::Error>(mut self, _: f64) -> Result<(), E> {
        self.bump()
    }

    fn visit_str<E: de::Error>(mut self, _: &str) -> Result<(), E> {
        self.bump()
    }

    fn visit_unit<E: de::Error>(mut self) -> Result<(), E> {
        self.bump()
    }

    fn visit_none<E: de::Error>(mut self) -> Result<(), E> {
        self.bump()
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.bump::<A::Error>()?;
        while seq.next_element_seed(self.nested())?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.bump::<A::Error>()?;
        // Keys count too: a map of them (`counts`) allocates each one.
        while map.next_key_seed(self.nested())?.is_some() {
            map.next_value_seed(self.nested())?;
        }
        Ok(())
    }
}

/// `deserialize_with` for a list of at most `N` items: a longer one is an error as soon as item
/// `N + 1` is seen, before it is built.
pub fn vec_at_most<'de, D, T, const N: usize>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: de::Deserializer<'de>,
    T: de::Deserialize<'de>,
{
    struct Items<T, const N: usize>(std::marker::PhantomData<T>);

    impl<'de, T: de::Deserialize<'de>, const N: usize> Visitor<'de> for Items<T, N> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a list of at most {N} items")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element()? {
                if items.len() == N {
                    return Err(de::Error::custom(format_args!(
                        "more than {N} items, more than this version reads"
                    )));
                }
                items.push(item);
            }
            Ok(items)
        }
    }

    deserializer.deserialize_seq(Items::<T, N>(std::marker::PhantomData))
}

/// `deserialize_with` for a map of at most `N` entries (see [`vec_at_most`]).
pub fn map_at_most<'de, D, V, const N: usize>(
    deserializer: D,
) -> Result<std::collections::BTreeMap<String, V>, D::Error>
where
    D: de::Deserializer<'de>,
    V: de::Deserialize<'de>,
{
    struct Entries<V, const N: usize>(std::marker::PhantomData<V>);

    impl<'de, V: de::Deserialize<'de>, const N: usize> Visitor<'de> for Entries<V, N> {
        type Value = std::collections::BTreeMap<String, V>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a map of at most {N} entries")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut entries = std::collections::BTreeMap::new();
            while let Some((key, value)) = map.next_entry::<String, V>()? {
                entries.insert(key, value);
                if entries.len() > N {
                    return Err(de::Error::custom(format_args!(
                        "more than {N} entries, more than this version reads"
                    )));
                }
            }
            Ok(entries)
        }
    }

    deserializer.deserialize_map(Entries::<V, N>(std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Bounded {
        #[serde(deserialize_with = "vec_at_most::<_, _, 3>")]
        list: Vec<String>,
        #[serde(default, deserialize_with = "map_at_most::<_, _, 2>")]
        map: std::collections::BTreeMap<String, u64>,
    }

    #[test]
    fn bounded_collections_refuse_one_more() {
        let ok: Bounded =
            serde_json::from_str(r#"{"list":["a","b","c"],"map":{"x":1,"y":2}}"#).unwrap();
        assert_eq!(ok.list.len(), 3);
        assert_eq!(ok.map.len(), 2);
        let err = serde_json::from_str::<Bounded>(r#"{"list":["a","b","c","d"]}"#).unwrap_err();
        assert!(err.to_string().contains("more than 3 items"), "{err}");
        let err = serde_json::from_str::<Bounded>(r#"{"list":[],"map":{"x":1,"y":2,"z":3}}"#)
            .unwrap_err();
        assert!(err.to_string().contains("more than 2 entries"), "{err}");
    }

    #[test]
    fn counts_every_value_and_key() {
        assert_eq!(count_values(b"1", 10), Ok(1));
        assert_eq!(count_values(b"[]", 10), Ok(1));
        assert_eq!(count_values(br#"["a", 1, null, true]"#, 10), Ok(5));
        // object, key, nested object, key, value
        assert_eq!(count_values(br#"{"a": {"b": 2}}"#, 10), Ok(5));
        assert_eq!(count_values(br#"{"a": "x\"y"}"#, 10), Ok(3));
    }

    #[test]
    fn stops_at_the_limit() {
        let many = format!("[{}1]", "1,".repeat(1000));
        // 1001 numbers and the array.
        assert_eq!(count_values(many.as_bytes(), 1002), Ok(1002));
        for limit in [1001, 100, 0] {
            assert_eq!(
                count_values(many.as_bytes(), limit),
                Err(JsonLimitError::TooManyValues { limit })
            );
        }
    }

    #[test]
    fn invalid_or_too_deep_json_is_invalid() {
        for bad in [&b"[1,"[..], b"{\"a\"}", b"", b"1 2", b"nul"] {
            assert!(
                matches!(count_values(bad, 100), Err(JsonLimitError::Invalid(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(matches!(
            count_values(deep.as_bytes(), 1000),
            Err(JsonLimitError::Invalid(_))
        ));
    }
}
