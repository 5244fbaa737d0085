//! The envelope: CloudEvents 1.0 in Kafka binary content mode. Attributes ride
//! in headers, the JSON payload is the record value, the order id is the key.
//!
//! Reading headers never panics: a missing, null, non-UTF-8 or garbled header
//! is an [`EnvelopeError`] naming the header, so the record can be
//! dead-lettered with that reason.

use std::str::FromStr;

use udders_kernel::{CorrelationId, EventId, Timestamp};

use crate::subject::Subject;

/// `ce_id`: the event id.
pub const ID: &str = "ce_id";
/// `ce_source`: the publishing service, `/udders/<service>`.
pub const SOURCE: &str = "ce_source";
/// `ce_type`: `udders.<domain>.<action>`.
pub const TYPE: &str = "ce_type";
/// `ce_subject`: the taxonomy address.
pub const SUBJECT: &str = "ce_subject";
/// `ce_time`: RFC 3339.
pub const TIME: &str = "ce_time";
/// `ce_specversion`: `1.0`.
pub const SPEC_VERSION: &str = "ce_specversion";
/// `content-type`: `application/json`.
pub const CONTENT_TYPE: &str = "content-type";
/// The saga's correlation id.
pub const CORRELATION_ID: &str = "correlationid";
/// The id of the event that caused this one (absent for a POS request).
pub const CAUSATION_ID: &str = "causationid";
/// W3C trace context (optional).
pub const TRACEPARENT: &str = "traceparent";
/// The event's version in its aggregate stream.
pub const SEQUENCE: &str = "sequence";

/// The headers every record must carry.
pub const REQUIRED_HEADERS: [&str; 9] =
    [ID, SOURCE, TYPE, SUBJECT, TIME, SPEC_VERSION, CONTENT_TYPE, CORRELATION_ID, SEQUENCE];

/// Why a record's headers are not a valid envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// A required header is absent.
    #[error("header {0} is missing")]
    Missing(&'static str),
    /// A header is present with a null value.
    #[error("header {0} is null")]
    Null(&'static str),
    /// A header's value is not UTF-8.
    #[error("header {0} is not UTF-8")]
    NotUtf8(&'static str),
    /// A header's value does not parse.
    #[error("header {header} = {value:?}: {reason}")]
    Invalid {
        /// Which header.
        header: &'static str,
        /// Its value (cut to 100 characters).
        value: String,
        /// Why it does not parse.
        reason: String,
    },
}

/// The CloudEvents attributes and Udders extensions of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `ce_id`.
    pub id: EventId,
    /// `ce_source`, for example `/udders/credit`.
    pub source: String,
    /// `ce_type`, for example `udders.credit.reserved`.
    pub event_type: String,
    /// `ce_subject`.
    pub subject: Subject,
    /// `ce_time`.
    pub time: Timestamp,
    /// `correlationid`.
    pub correlation_id: CorrelationId,
    /// `causationid`.
    pub causation_id: Option<EventId>,
    /// `traceparent`.
    pub traceparent: Option<String>,
    /// `sequence`: the version in the aggregate stream.
    pub sequence: u64,
}

impl Envelope {
    /// The headers to send, in a stable order.
    pub fn headers(&self) -> Vec<(String, String)> {
        let mut headers = vec![
            (ID.to_owned(), self.id.to_string()),
            (SOURCE.to_owned(), self.source.clone()),
            (TYPE.to_owned(), self.event_type.clone()),
            (SUBJECT.to_owned(), self.subject.to_string()),
            (TIME.to_owned(), self.time.to_string()),
            (SPEC_VERSION.to_owned(), "1.0".to_owned()),
            (CONTENT_TYPE.to_owned(), "application/json".to_owned()),
            (CORRELATION_ID.to_owned(), self.correlation_id.to_string()),
            (SEQUENCE.to_owned(), self.sequence.to_string()),
        ];
        if let Some(cause) = self.causation_id {
            headers.push((CAUSATION_ID.to_owned(), cause.to_string()));
        }
        if let Some(trace) = &self.traceparent {
            headers.push((TRACEPARENT.to_owned(), trace.clone()));
        }
        headers
    }

    /// Reads an envelope from record headers: `(name, value)` pairs, where a
    /// value may be null. The first occurrence of a name counts.
    pub fn from_headers<'a>(
        headers: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
    ) -> Result<Self, EnvelopeError> {
        let headers: Vec<(&str, Option<&[u8]>)> = headers.into_iter().collect();
        let find = |name: &'static str| -> Result<Option<&str>, EnvelopeError> {
            match headers.iter().find(|(n, _)| *n == name) {
                None => Ok(None),
                Some((_, None)) => Err(EnvelopeError::Null(name)),
                Some((_, Some(bytes))) => {
                    std::str::from_utf8(bytes).map(Some).map_err(|_| EnvelopeError::NotUtf8(name))
                }
            }
        };
        let required = |name: &'static str| find(name)?.ok_or(EnvelopeError::Missing(name));
        let parse = |name: &'static str, value: &str, reason: String| EnvelopeError::Invalid {
            header: name,
            value: value.chars().take(100).collect(),
            reason,
        };
        let uuid_of = |name: &'static str, value: &str| {
            uuid::Uuid::from_str(value).map_err(|e| parse(name, value, e.to_string()))
        };

        let spec = required(SPEC_VERSION)?;
        if spec != "1.0" {
            return Err(parse(SPEC_VERSION, spec, "only CloudEvents 1.0 is read".into()));
        }
        let content_type = required(CONTENT_TYPE)?;
        if !content_type.starts_with("application/json") {
            return Err(parse(CONTENT_TYPE, content_type, "only application/json is read".into()));
        }
        let id = required(ID)?;
        let subject = required(SUBJECT)?;
        let time = required(TIME)?;
        let sequence = required(SEQUENCE)?;
        let correlation = required(CORRELATION_ID)?;
        Ok(Envelope {
            id: EventId::from_uuid(uuid_of(ID, id)?),
            source: required(SOURCE)?.to_owned(),
            event_type: required(TYPE)?.to_owned(),
            subject: subject
                .parse()
                .map_err(|e: crate::subject::SubjectError| parse(SUBJECT, subject, e.to_string()))?,
            time: Timestamp::parse_rfc3339(time).map_err(|e| parse(TIME, time, e.to_string()))?,
            correlation_id: CorrelationId::from_uuid(uuid_of(CORRELATION_ID, correlation)?),
            causation_id: find(CAUSATION_ID)?.map(|c| uuid_of(CAUSATION_ID, c).map(EventId::from_uuid)).transpose()?,
            traceparent: find(TRACEPARENT)?.map(str::to_owned),
            sequence: sequence
                .parse()
                .map_err(|e: std::num::ParseIntError| parse(SEQUENCE, sequence, e.to_string()))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn envelope() -> Envelope {
        Envelope {
            id: EventId::from_uuid(Uuid::from_u128(1)),
            source: "/udders/credit".into(),
            event_type: "udders.credit.reserved".into(),
            subject: "credit/reserved/1.0/icecream/udders/mango/sg/web".parse().unwrap(),
            time: Timestamp::from_micros(1_795_356_185_123_456),
            correlation_id: CorrelationId::from_uuid(Uuid::from_u128(2)),
            causation_id: Some(EventId::from_uuid(Uuid::from_u128(3))),
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
            sequence: 4,
        }
    }

    fn as_pairs(headers: &[(String, String)]) -> Vec<(&str, Option<&[u8]>)> {
        headers.iter().map(|(k, v)| (k.as_str(), Some(v.as_bytes()))).collect()
    }

    #[test]
    fn an_envelope_round_trips_through_headers() {
        let headers = envelope().headers();
        assert_eq!(Envelope::from_headers(as_pairs(&headers)), Ok(envelope()));
        let mut minimal = envelope();
        minimal.causation_id = None;
        minimal.traceparent = None;
        assert_eq!(Envelope::from_headers(as_pairs(&minimal.headers())), Ok(minimal));
    }

    #[test]
    fn missing_null_and_garbage_headers_are_errors_not_panics() {
        let headers = envelope().headers();
        for name in REQUIRED_HEADERS {
            let without: Vec<_> = as_pairs(&headers).into_iter().filter(|(n, _)| *n != name).collect();
            assert_eq!(Envelope::from_headers(without), Err(EnvelopeError::Missing(name)), "{name}");
            let nulled: Vec<_> =
                as_pairs(&headers).into_iter().map(|(n, v)| (n, if n == name { None } else { v })).collect();
            assert_eq!(Envelope::from_headers(nulled), Err(EnvelopeError::Null(name)), "{name}");
            let bad: &[u8] = &[0xff, 0xfe];
            let garbled: Vec<_> =
                as_pairs(&headers).into_iter().map(|(n, v)| (n, if n == name { Some(bad) } else { v })).collect();
            assert_eq!(Envelope::from_headers(garbled), Err(EnvelopeError::NotUtf8(name)), "{name}");
        }
        for (name, value) in [
            (ID, "nope"),
            (SUBJECT, "a/b"),
            (TIME, "yesterday"),
            (SEQUENCE, "-1"),
            (SPEC_VERSION, "0.3"),
            (CONTENT_TYPE, "text/xml"),
        ] {
            let changed: Vec<_> = as_pairs(&headers)
                .into_iter()
                .map(|(n, v)| (n, if n == name { Some(value.as_bytes()) } else { v }))
                .collect();
            assert!(
                matches!(Envelope::from_headers(changed), Err(EnvelopeError::Invalid { header, .. }) if header == name),
                "{name}"
            );
        }
    }
}
