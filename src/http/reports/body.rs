//! The overdue report's body: its JSON written a customer at a time, in
//! chunks handed from the task that reads the rows to the response.

use axum::body::Bytes;
use futures_util::stream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::app::AppError;
use crate::app::reports::{OverdueReport, OverdueSink};
use crate::domain::records::OverdueCustomer;
use crate::http::views;

/// JSON gathered before it goes out as one chunk of the body.
const CHUNK: usize = 64 * 1024;

/// What the task computing a report hands the response.
pub(super) enum Piece {
    /// More of the body; more follows.
    Chunk(Bytes),
    /// The rest of the body.
    Last(Bytes),
    /// The report failed: before any chunk, this is the answer; after, the
    /// body is cut off.
    Failed(AppError),
}

/// The task computing a report; dropped with the response (the client gone
/// before the first chunk, or the body dropped), it is stopped, and the
/// transaction it had open rolls back.
pub(super) struct Producer(pub(super) JoinHandle<()>);

impl Drop for Producer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The body after its first chunk: the chunks as they come, until the last.
/// A failure, or the task ending without a last chunk, is an error of the
/// body, never its end.
pub(super) fn rest(
    first: Bytes,
    received: mpsc::UnboundedReceiver<Piece>,
    producer: Producer,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    enum State {
        First(Bytes, mpsc::UnboundedReceiver<Piece>, Producer),
        More(mpsc::UnboundedReceiver<Piece>, Producer),
        Done,
    }
    stream::unfold(
        State::First(first, received, producer),
        |state| async move {
            match state {
                State::First(json, received, producer) => {
                    Some((Ok(json), State::More(received, producer)))
                }
                State::More(mut received, producer) => match received.recv().await {
                    Some(Piece::Chunk(json)) => Some((Ok(json), State::More(received, producer))),
                    Some(Piece::Last(json)) => Some((Ok(json), State::Done)),
                    Some(Piece::Failed(error)) => {
                        tracing::error!(%error, "the overdue report stopped after its first chunk");
                        Some((Err(std::io::Error::other(error.to_string())), State::Done))
                    }
                    None => {
                        tracing::error!("the overdue report's task ended without its last chunk");
                        Some((
                            Err(std::io::Error::other("the overdue report ended early")),
                            State::Done,
                        ))
                    }
                },
                State::Done => None,
            }
        },
    )
}

/// The report's JSON, exactly as serde writes `views::OverdueReport`, a
/// customer at a time: a chunk goes out whenever `CHUNK` bytes are ready.
pub(super) struct JsonWriter {
    json: Vec<u8>,
    /// Whether a customer was written (the next one needs a comma).
    listed: bool,
    pieces: mpsc::UnboundedSender<Piece>,
    /// A customer serde could not write (not expected of these types).
    failed: Option<serde_json::Error>,
}

impl JsonWriter {
    /// Starts the JSON with the report's fields before `customers`.
    pub(super) fn new(report: OverdueReport, pieces: mpsc::UnboundedSender<Piece>) -> Self {
        let mut writer = Self {
            json: Vec::with_capacity(CHUNK + 1024),
            listed: false,
            pieces,
            failed: None,
        };
        writer.json.extend_from_slice(br#"{"as_of":"#);
        writer.write(&report.as_of);
        writer.json.extend_from_slice(br#","days":"#);
        writer.write(&report.days);
        writer.json.extend_from_slice(br#","customers":["#);
        writer
    }

    fn write(&mut self, value: &impl serde::Serialize) {
        if let Err(error) = serde_json::to_writer(&mut self.json, value) {
            self.failed.get_or_insert(error);
        }
    }

    /// Closes the JSON: the last piece of the body.
    pub(super) fn finish(mut self) -> Piece {
        if let Some(error) = self.failed {
            return Piece::Failed(AppError::Internal(format!(
                "the overdue report could not be written as JSON: {error}"
            )));
        }
        self.json.extend_from_slice(b"]}");
        Piece::Last(Bytes::from(self.json))
    }
}

impl OverdueSink for JsonWriter {
    fn customer(&mut self, customer: OverdueCustomer) {
        if self.listed {
            self.json.push(b',');
        }
        self.listed = true;
        self.write(&views::OverdueCustomer::from(customer));
        if self.json.len() >= CHUNK && self.failed.is_none() {
            let json = std::mem::replace(&mut self.json, Vec::with_capacity(CHUNK + 1024));
            // The receiver is gone only with the response: the rows left
            // are read to no one until the task is stopped.
            let _ = self.pieces.send(Piece::Chunk(Bytes::from(json)));
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use uuid::Uuid;

    use super::*;
    use crate::domain::records::Aging;

    fn customer(n: u32) -> OverdueCustomer {
        OverdueCustomer {
            customer_id: Uuid::from_u128(u128::from(n)),
            name: format!("Customer \"{n}\" \u{e9}"),
            balance: i64::from(n) * 1_000,
            overdue_amount: i64::from(n) * 700,
            oldest_unpaid_at: DateTime::<Utc>::from_timestamp(
                1_700_000_000 + i64::from(n),
                123_456_000,
            )
            .expect("a valid instant"),
            aging: Aging {
                current: i64::from(n) * 300,
                days_1_30: i64::from(n) * 400,
                days_31_60: i64::from(n) * 300,
                days_61_90: 0,
                over_90: 0,
            },
        }
    }

    /// Everything the writer sends, joined, and whether it ended with a
    /// last piece.
    fn written(report: OverdueReport, customers: u32) -> (Vec<u8>, usize) {
        let (pieces, mut received) = mpsc::unbounded_channel();
        let mut writer = JsonWriter::new(report, pieces.clone());
        for n in 0..customers {
            writer.customer(customer(n));
        }
        let last = writer.finish();
        let _ = pieces.send(last);
        let (mut json, mut chunks) = (Vec::new(), 0);
        while let Ok(piece) = received.try_recv() {
            match piece {
                Piece::Chunk(bytes) => {
                    chunks += 1;
                    json.extend_from_slice(&bytes);
                }
                Piece::Last(bytes) => json.extend_from_slice(&bytes),
                Piece::Failed(error) => panic!("failed: {error}"),
            }
        }
        (json, chunks)
    }

    fn as_serde_writes_it(report: OverdueReport, customers: u32) -> Vec<u8> {
        serde_json::to_vec(&views::OverdueReport {
            as_of: report.as_of,
            days: report.days,
            customers: (0..customers)
                .map(|n| views::OverdueCustomer::from(customer(n)))
                .collect(),
        })
        .expect("serializable")
    }

    #[test]
    fn the_written_json_is_what_serde_writes_for_the_view() {
        let as_of = DateTime::<Utc>::from_timestamp(1_800_000_000, 987_654_321).expect("valid");
        for days in [None, Some(30)] {
            let report = OverdueReport { as_of, days };
            for customers in [0, 1, 2, 5_000] {
                let (json, chunks) = written(report, customers);
                assert_eq!(
                    String::from_utf8(json).expect("UTF-8"),
                    String::from_utf8(as_serde_writes_it(report, customers)).expect("UTF-8"),
                    "days {days:?}, {customers} customers"
                );
                if customers == 5_000 {
                    assert!(chunks > 1, "a large report goes out in chunks");
                }
            }
        }
    }

    /// What `rest` makes of the pieces after the first chunk: `Ok` per
    /// chunk, then `Err` for an error.
    async fn body_after(pieces: Vec<Piece>) -> Vec<Result<Bytes, String>> {
        use futures_util::StreamExt;
        let (sender, received) = mpsc::unbounded_channel();
        for piece in pieces {
            let _ = sender.send(piece);
        }
        drop(sender);
        let producer = Producer(tokio::spawn(async {}));
        rest(Bytes::from_static(b"first"), received, producer)
            .map(|chunk| chunk.map_err(|error| error.to_string()))
            .collect()
            .await
    }

    #[tokio::test]
    async fn a_body_ends_only_with_its_last_piece_and_fails_otherwise() {
        let chunk = |text: &'static str| Piece::Chunk(Bytes::from_static(text.as_bytes()));
        let last = |text: &'static str| Piece::Last(Bytes::from_static(text.as_bytes()));
        let whole = body_after(vec![chunk("a"), last("b")]).await;
        assert_eq!(whole.len(), 3);
        assert!(whole.iter().all(Result::is_ok));

        let failed = body_after(vec![
            chunk("a"),
            Piece::Failed(AppError::Unavailable("deadline".into())),
            last("never sent"),
        ])
        .await;
        assert_eq!(failed.len(), 3);
        assert!(failed[2].is_err(), "{failed:?}");

        // The task gone without its last piece (a panic, an abort).
        let cut = body_after(vec![chunk("a")]).await;
        assert_eq!(cut.len(), 3);
        assert!(cut[2].is_err(), "{cut:?}");
    }
}
