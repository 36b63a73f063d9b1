//! Identifiers: stream ids, entity ids, positions and versions.
//!
//! A stream id is `<category>:<slug>`, both lowercase ASCII letters, digits and `-`;
//! the one exception is `country:XX`, an ISO 3166-1 alpha-2 code in capitals. Entity ids
//! are stream ids whose category is an entity kind. The newtypes keep a [`Position`]
//! from being passed where a [`Version`] is meant.

use super::countries::country_name;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Longest stream id accepted, in bytes.
pub const MAX_STREAM_ID_LEN: usize = 200;

/// An event's place in the whole log: starts at 1, no gaps, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Position(pub u64);

/// An event's place in its stream: starts at 1, no gaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(pub u64);

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The id of a stream: `<category>:<slug>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(String);

/// The kinds of entity, each a stream category.
pub const ENTITY_KINDS: &[&str] = &["person", "org", "office", "place", "country"];

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Checks a stream category on its own (`trip`, `arms-sale`), as a filter takes it:
/// lowercase ASCII letters, digits and `-`, like the part of a stream id before the colon.
pub fn check_category(text: &str) -> Result<(), String> {
    if text.len() < MAX_STREAM_ID_LEN && is_token(text) {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a stream category: expected lowercase letters, digits and -, like trip or arms-sale",
            text.chars().take(100).collect::<String>()
        ))
    }
}

impl StreamId {
    /// Parses a stream id, saying what was expected when it is not one.
    pub fn parse(text: &str) -> Result<StreamId, String> {
        if text.len() > MAX_STREAM_ID_LEN {
            return Err(format!(
                "a stream id is at most {MAX_STREAM_ID_LEN} bytes, this one has {}",
                text.len()
            ));
        }
        let Some((category, slug)) = text.split_once(':') else {
            return Err(format!(
                "`{text}` is not a stream id: expected <category>:<slug> like trip:blinken-final-tour-2025"
            ));
        };
        if !is_token(category) {
            return Err(format!(
                "`{text}`: the category must be lowercase letters, digits and -"
            ));
        }
        if category == "country" {
            if country_name(slug).is_none() {
                let capitals = slug.to_ascii_uppercase();
                return Err(if country_name(&capitals).is_some() {
                    format!("`{text}`: country codes are in capitals: country:{capitals}")
                } else if let Some(code) = common_misnomer(slug) {
                    format!(
                        "`{text}`: {slug} is not an ISO 3166-1 alpha-2 country code; {} is country:{code}",
                        country_name(code).unwrap_or(code)
                    )
                } else if capitals == slug && slug.len() == 2 {
                    format!(
                        "`{text}`: {slug} is not an ISO 3166-1 alpha-2 country code; give one that is, like country:KR"
                    )
                } else {
                    format!(
                        "`{text}`: expected an ISO 3166-1 alpha-2 code in capitals, like country:KR"
                    )
                });
            }
        } else if !is_token(slug) {
            return Err(format!(
                "`{text}`: the slug must be lowercase letters, digits and -"
            ));
        }
        Ok(StreamId(text.to_owned()))
    }

    /// The part before the colon.
    pub fn category(&self) -> &str {
        self.0.split_once(':').map_or("", |(c, _)| c)
    }

    /// The part after the colon.
    pub fn slug(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, s)| s)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this stream id names an entity.
    pub fn is_entity(&self) -> bool {
        ENTITY_KINDS.contains(&self.category())
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for StreamId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for StreamId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        StreamId::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Codes people use for a country that ISO 3166-1 gives another: the United Kingdom is
/// `GB`, not `UK`; Greece is `GR`, not the EU's `EL`.
fn common_misnomer(code: &str) -> Option<&'static str> {
    match code {
        "UK" => Some("GB"),
        "EL" => Some("GR"),
        _ => None,
    }
}

/// The slug a name would have in an id: `Tel Aviv` → `tel-aviv` (lowercase ASCII
/// letters and digits, a `-` for each run of anything else); `None` when nothing is left.
pub fn slug_of(name: &str) -> Option<String> {
    let mut slug = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    (!slug.is_empty()).then(|| slug.to_owned())
}

/// What [`EntityId::parse`] says of a name given where an id belongs, after the name.
const NAME_NOT_ID: &str = "` is not an entity id: an entity is named by its id";

/// The name an error of [`EntityId::parse`] is about, when it is a name given where an
/// id belongs (`Addis`): the views may know which entity it names.
pub fn name_given_for_id(message: &str) -> Option<&str> {
    let (name, _) = message.strip_prefix('`')?.split_once(NAME_NOT_ID)?;
    Some(name)
}

/// The id of an entity: a person, organisation, office, place or country.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntityId(StreamId);

impl EntityId {
    /// Parses an entity id such as `person:antony-blinken` or `country:KR`.
    pub fn parse(text: &str) -> Result<EntityId, String> {
        // A name where an id belongs: a country's (`Norway`) gets its id, another
        // (`Manila`) what its id would look like.
        if !text.contains(':')
            && let Some(code) = super::countries::code_of(text)
        {
            return Err(format!(
                "`{text}` is not an entity id: a country is named by its id, here country:{code}"
            ));
        }
        if !text.contains(':')
            && let Some(slug) = slug_of(text)
            && text.len() <= MAX_STREAM_ID_LEN
        {
            return Err(format!(
                "`{text}{NAME_NOT_ID}, <kind>:<slug>, such as place:{slug} or person:{slug} (the kinds are person, org, office and place, and country:XX for a country); `chronicle entity list` lists the ids"
            ));
        }
        let id = StreamId::parse(text).map_err(|e| {
            format!("{e} (an entity id is person:, org:, office:, place: or country:)")
        })?;
        if !id.is_entity() {
            return Err(format!(
                "`{text}` is not an entity id: expected one of person:, org:, office:, place:, country:XX"
            ));
        }
        Ok(EntityId(id))
    }

    /// The entity kind (`person`, `org`, `office`, `place`, `country`).
    pub fn kind(&self) -> &str {
        self.0.category()
    }

    /// Countries are built in and need no registration.
    pub fn is_country(&self) -> bool {
        self.kind() == "country"
    }

    /// The built-in English name of a country id.
    pub fn country_name(&self) -> Option<&'static str> {
        if self.is_country() {
            country_name(self.0.slug())
        } else {
            None
        }
    }

    /// The entity's own stream.
    pub fn stream(&self) -> &StreamId {
        &self.0
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for EntityId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for EntityId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        EntityId::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Readers of ids in view documents, for `#[serde(deserialize_with = …)]`, used where
/// a timeline page reads (a fact's stream and entities, an entity's id, the alias
/// lists, a trip's travelers). The projector wrote those ids from events the store had
/// checked, so they are not checked again: a profile of the page (`perf`) charged about
/// 6% of it to parsing them. A well-formed document holding a bad id (damaged on
/// disk, or written under looser rules) is then served as it is, and only `chronicle
/// verify` finds it, comparing the views with a fresh replay; so a change that
/// tightens the id rules must bump the facts layer's version, which rebuilds the views.
pub(crate) mod in_views {
    use super::{EntityId, StreamId};
    use serde::{Deserialize, Deserializer};

    /// An entity id read from a view document, as it was written.
    pub struct Entity(EntityId);

    impl Entity {
        pub fn into_inner(self) -> EntityId {
            self.0
        }
    }

    impl<'de> Deserialize<'de> for Entity {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            String::deserialize(d).map(|s| Entity(EntityId(StreamId(s))))
        }
    }

    pub fn stream<'de, D: Deserializer<'de>>(d: D) -> Result<StreamId, D::Error> {
        String::deserialize(d).map(StreamId)
    }

    pub fn entity<'de, D: Deserializer<'de>>(d: D) -> Result<EntityId, D::Error> {
        Entity::deserialize(d).map(Entity::into_inner)
    }

    pub fn entities<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EntityId>, D::Error> {
        Vec::<Entity>::deserialize(d).map(|ids| ids.into_iter().map(Entity::into_inner).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids() {
        for good in [
            "trip:blinken-final-tour-2025",
            "arms-sale:us-japan-2025-01",
            "country:KR",
        ] {
            assert!(StreamId::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "trip",
            "Trip:x",
            "trip:",
            "trip:Blinken",
            "country:kr",
            "country:XX",
            ":x",
            "a:b c",
        ] {
            assert!(StreamId::parse(bad).is_err(), "{bad}");
        }
        let id = StreamId::parse("trip:x").unwrap();
        assert_eq!((id.category(), id.slug()), ("trip", "x"));
    }

    #[test]
    fn a_country_code_that_is_not_one_says_which_fix() {
        let message = |text: &str| StreamId::parse(text).unwrap_err();
        assert!(message("country:kr").contains("country codes are in capitals: country:KR"));
        assert!(message("country:XX").contains("XX is not an ISO 3166-1 alpha-2 country code"));
        assert!(
            message("country:UK").contains(
                "UK is not an ISO 3166-1 alpha-2 country code; United Kingdom is country:GB"
            ),
            "{}",
            message("country:UK")
        );
        assert!(message("country:Korea").contains("expected an ISO 3166-1 alpha-2 code"));
    }

    #[test]
    fn entity_ids() {
        assert!(EntityId::parse("person:antony-blinken").is_ok());
        assert_eq!(
            EntityId::parse("country:JP").unwrap().country_name(),
            Some("Japan")
        );
        assert!(EntityId::parse("trip:x").is_err());
        let seoul = EntityId::parse("Seoul").unwrap_err();
        assert_eq!(name_given_for_id(&seoul), Some("Seoul"));
        assert_eq!(
            name_given_for_id(&EntityId::parse("trip:x").unwrap_err()),
            None
        );
    }
}
