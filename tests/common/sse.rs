//! Reading Server-Sent Events (`GET /events/live`) in tests.

use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

/// One Server-Sent Event.
#[derive(Debug, Default)]
pub struct Sse {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// Reads Server-Sent Events from a response body.
pub struct SseReader(BufReader<Box<dyn Read + Send>>);

impl SseReader {
    pub fn open(url: &str, last_event_id: Option<u64>) -> SseReader {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .new_agent();
        let mut request = agent.get(url).header("Accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.call().unwrap();
        assert_eq!(response.status(), 200);
        let reader: Box<dyn Read + Send> = Box::new(response.into_body().into_reader());
        SseReader(BufReader::new(reader))
    }

    /// The next event (comments skipped), or `None` at the end of the stream.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Sse> {
        let mut event = Sse::default();
        let mut any = false;
        loop {
            let mut line = String::new();
            if self.0.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if any {
                    return Some(event);
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
            any = true;
            match field {
                "id" => event.id = Some(value),
                "event" => event.event = Some(value),
                "data" => event.data.push_str(&value),
                _ => {}
            }
        }
    }
}
