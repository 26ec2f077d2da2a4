//! extFields (the "custom header": every header field as a string) and typed headers over them.
//!
//! Typed headers are declared with [`command_header!`]; a required field that is missing or
//! unparsable is a `HeaderError` the processor turns into a response with a remark.

use crate::HeaderError;

/// The extFields map. Small (a send carries ~13 entries), so a vector with linear lookup beats a
/// hash map and keeps the peer's order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExtFields(Vec<(String, String)>);

impl ExtFields {
    pub fn new() -> Self {
        ExtFields(Vec::new())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `key`, replacing an earlier value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// Appends without checking for an earlier value (decoders use it: keys are unique on the wire).
    pub(crate) fn push(&mut self, key: String, value: String) {
        self.0.push((key, value));
    }

    pub fn remove(&mut self, key: &str) -> Option<String> {
        let pos = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(pos).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A typed header: a struct read from and written to extFields.
pub trait CommandHeader: Sized {
    fn decode(ext: &ExtFields) -> Result<Self, HeaderError>;
    fn encode(&self, ext: &mut ExtFields);
}

/// A scalar that travels as a string in extFields.
pub trait HeaderValue: Sized {
    fn parse(s: &str) -> Option<Self>;
    fn format(&self) -> String;
}

impl HeaderValue for String {
    fn parse(s: &str) -> Option<Self> {
        Some(s.to_owned())
    }
    fn format(&self) -> String {
        self.clone()
    }
}

macro_rules! numeric_header_value {
    ($($t:ty),*) => {$(
        impl HeaderValue for $t {
            fn parse(s: &str) -> Option<Self> {
                s.trim().parse().ok()
            }
            fn format(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
numeric_header_value!(i32, i64, u64, f64);

impl HeaderValue for bool {
    fn parse(s: &str) -> Option<Self> {
        // Java's Boolean.parseBoolean: anything but "true" (any case) is false.
        Some(s.trim().eq_ignore_ascii_case("true"))
    }
    fn format(&self) -> String {
        if *self { "true" } else { "false" }.to_owned()
    }
}

/// A field of a typed header: required (`T`) or optional (`Option<T>`).
pub trait HeaderField: Sized {
    fn from_ext(ext: &ExtFields, key: &'static str) -> Result<Self, HeaderError>;
    fn to_ext(&self, ext: &mut ExtFields, key: &'static str);
}

impl<T: HeaderValue> HeaderField for T {
    fn from_ext(ext: &ExtFields, key: &'static str) -> Result<Self, HeaderError> {
        let raw = ext.get(key).ok_or(HeaderError::Missing(key))?;
        T::parse(raw).ok_or_else(|| HeaderError::Invalid {
            field: key,
            value: raw.to_owned(),
        })
    }
    fn to_ext(&self, ext: &mut ExtFields, key: &'static str) {
        ext.insert(key, self.format());
    }
}

impl<T: HeaderValue> HeaderField for Option<T> {
    fn from_ext(ext: &ExtFields, key: &'static str) -> Result<Self, HeaderError> {
        match ext.get(key) {
            // Java writes null fields by omitting them; an empty string is as good as absent.
            None | Some("") | Some("null") => Ok(None),
            Some(raw) => T::parse(raw).map(Some).ok_or_else(|| HeaderError::Invalid {
                field: key,
                value: raw.to_owned(),
            }),
        }
    }
    fn to_ext(&self, ext: &mut ExtFields, key: &'static str) {
        if let Some(v) = self {
            ext.insert(key, v.format());
        }
    }
}

/// Declares a typed header: `field: Type => "wireName"`. `Option<T>` fields are optional.
#[macro_export]
macro_rules! command_header {
    ($(#[$meta:meta])* pub struct $name:ident { $($field:ident : $ty:ty => $key:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name {
            $(pub $field: $ty,)*
        }

        impl $crate::CommandHeader for $name {
            fn decode(ext: &$crate::ExtFields) -> Result<Self, $crate::HeaderError> {
                Ok(Self {
                    $($field: <$ty as $crate::HeaderField>::from_ext(ext, $key)?,)*
                })
            }

            fn encode(&self, ext: &mut $crate::ExtFields) {
                $($crate::HeaderField::to_ext(&self.$field, ext, $key);)*
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    command_header! {
        pub struct Sample {
            topic: String => "topic",
            queue_id: i32 => "queueId",
            note: Option<String> => "note",
        }
    }

    #[test]
    fn typed_header_round_trips() {
        let h = Sample {
            topic: "T".into(),
            queue_id: 3,
            note: None,
        };
        let mut ext = ExtFields::new();
        h.encode(&mut ext);
        assert_eq!(ext.len(), 2);
        assert_eq!(Sample::decode(&ext).unwrap(), h);
    }

    #[test]
    fn missing_and_invalid_fields_are_named() {
        let mut ext = ExtFields::new();
        ext.insert("topic", "T");
        assert_eq!(Sample::decode(&ext), Err(HeaderError::Missing("queueId")));
        ext.insert("queueId", "x");
        assert!(matches!(
            Sample::decode(&ext),
            Err(HeaderError::Invalid {
                field: "queueId",
                ..
            })
        ));
    }
}
