//! Zero-copy serde helpers for the events: strings borrowed from the body when they have no
//! escapes, and header objects that keep only the headers a decision reads.

use std::borrow::Cow;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A string borrowed from the request body when it has no escapes (serde's own `Cow` impl
/// always copies; `#[serde(borrow)]` on a newtype does not).
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub(super) struct Text<'a>(#[serde(borrow)] pub(super) Cow<'a, str>);

/// An optional string field, borrowed when it has no escapes (`Option<Cow<str>>` alone would
/// always copy).
pub(super) fn borrowed<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    Ok(Option::<Text<'de>>::deserialize(d)?.map(|t| t.0))
}

/// The headers a decision reads, in `WANTED` order: the credentials, then the method-override
/// headers a backend may serve the request by (`request::METHOD_OVERRIDE_HEADERS`).
pub(super) const WANTED: [&str; 7] = [
    "authorization",
    "anti-csrf",
    "rid",
    "cookie",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];
pub(super) const COOKIE: usize = 3;
pub(super) const METHOD_OVERRIDES: std::ops::Range<usize> = 4..7;

/// A header object as API Gateway sends it (names in any case, `null` values dropped), keeping
/// only the headers in `WANTED`, first occurrence each. Every other value is still read as `V`,
/// so a wrongly shaped event is refused whichever header is wrong, but nothing else is kept.
/// `V` is one value (`headers`) or a list of values (`multiValueHeaders`).
#[derive(Debug)]
pub(super) struct HeaderObject<V>([Option<V>; WANTED.len()]);

impl<V> Default for HeaderObject<V> {
    fn default() -> Self {
        Self(std::array::from_fn(|_| None))
    }
}

impl<V> HeaderObject<V> {
    pub(super) fn get(&self, i: usize) -> Option<&V> {
        self.0.get(i).and_then(Option::as_ref)
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for HeaderObject<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Visit<V> {
            type Value = HeaderObject<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of header names to string values (or lists of them)")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(HeaderObject::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = HeaderObject::default();
                while let Some(name) = m.next_key::<Text<'de>>()? {
                    let value = m.next_value::<Option<V>>()?;
                    let slot = WANTED
                        .iter()
                        .position(|w| name.0.eq_ignore_ascii_case(w))
                        .and_then(|i| out.0.get_mut(i));
                    if let Some(slot) = slot
                        && slot.is_none()
                    {
                        *slot = value;
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_any(Visit(std::marker::PhantomData))
    }
}

pub(super) type Headers<'a> = HeaderObject<Text<'a>>;
pub(super) type MultiHeaders<'a> = HeaderObject<Values<'a>>;

/// A `multiValueHeaders` list: nearly always one value, kept without a list of its own.
#[derive(Debug)]
pub(super) struct Values<'a> {
    pub(super) first: Option<Text<'a>>,
    rest: Vec<Text<'a>>,
}

impl<'a> Values<'a> {
    pub(super) fn iter(&self) -> impl Iterator<Item = &Text<'a>> {
        self.first.iter().chain(self.rest.iter())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Values<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Visit<'a> {
            type Value = Values<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a sequence of header values")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let first = seq.next_element::<Text<'a>>()?;
                let mut rest = Vec::new();
                while let Some(v) = seq.next_element::<Text<'a>>()? {
                    rest.push(v);
                }
                Ok(Values { first, rest })
            }
        }
        d.deserialize_seq(Visit(std::marker::PhantomData))
    }
}
