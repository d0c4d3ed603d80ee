//! A several-picture stamp answer as a ZIP streamed while the pictures are stamped: each
//! stamped file is written out as soon as it is ready, so a request holds one stamped file at
//! a time (counted in the in-flight budget until sent), not the whole archive.

use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Frame;
use pixseal_service::stamp::StampPlan;
use tokio::sync::mpsc;

use crate::AppState;
use crate::stamp::{StampEntry, StampManifest, stamp_one};

/// What the ZIP writer wrote since the last chunk was taken.
#[derive(Clone, Default)]
struct Pending(Arc<Mutex<Vec<u8>>>);

impl Pending {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().expect("never poisoned: no panics while held"))
    }
}

impl Write for Pending {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("never poisoned: no panics while held")
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

type Chunk = Result<Bytes, std::io::Error>;

/// The response body: chunks as the stamping task sends them. An `Err` chunk aborts the
/// response, so a client never takes a cut-off archive for a whole one.
struct ChannelBody(mpsc::Receiver<Chunk>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.0.poll_recv(cx).map(|c| c.map(|c| c.map(Frame::data)))
    }
}

/// Stream the ZIP: `files` so far (the last one stamped, with its bytes), then the rest of
/// `parts`, then `manifest.json` with every picture's entry in the order sent. When the client
/// goes away the remaining pictures are not stamped (their bodies are dropped, zeroed).
pub(crate) async fn stream(
    s: AppState,
    plan: StampPlan,
    files: Vec<StampEntry>,
    parts: impl Iterator<Item = (usize, (Option<String>, pixseal_service::Body))> + Send + 'static,
) -> Response {
    let (tx, rx) = mpsc::channel::<Chunk>(1);
    tokio::spawn(async move {
        if let Err(e) = write_all(&s, &plan, files, parts, &tx).await {
            tracing::warn!(error = %e, "a streamed stamp archive ended early");
            let _ = tx.send(Err(e)).await;
        }
    });
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/zip"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"stamped.zip\""),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        axum::body::Body::new(ChannelBody(rx)),
    )
        .into_response()
}

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

async fn write_all(
    s: &AppState,
    plan: &StampPlan,
    mut files: Vec<StampEntry>,
    parts: impl Iterator<Item = (usize, (Option<String>, pixseal_service::Body))>,
    tx: &mpsc::Sender<Chunk>,
) -> std::io::Result<()> {
    let pending = Pending::default();
    let mut zip = ::zip::ZipWriter::new_stream(pending.clone());
    // Pictures are compressed already: stored as they are.
    let opts = ::zip::write::SimpleFileOptions::default()
        .compression_method(::zip::CompressionMethod::Stored);
    let send = |bytes: Vec<u8>| async move {
        let held = s.hold_answer(bytes).await.map_err(io)?;
        tx.send(Ok(held))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    };
    let mut add = |entry: &mut StampEntry| -> std::io::Result<Vec<u8>> {
        if let (Some(file), Some(done)) = (&entry.file, entry.stamped.as_mut()) {
            zip.start_file(file.as_str(), opts).map_err(io)?;
            zip.write_all(&std::mem::take(&mut done.bytes))?;
        }
        Ok(pending.take())
    };
    for entry in &mut files {
        let chunk = add(entry)?;
        send(chunk).await?;
    }
    for (i, (name, body)) in parts {
        let mut entry = match stamp_one(s, plan, i, name.clone(), body).await {
            Ok(Ok(entry)) => entry,
            Ok(Err((entry, _))) => entry,
            // Past the first picture the status is sent: a failure of the service itself is
            // this picture's entry too.
            Err(api) => StampEntry {
                name,
                file: None,
                stamped: None,
                error: Some(api.detail()),
            },
        };
        let chunk = add(&mut entry)?;
        files.push(entry);
        send(chunk).await?;
    }
    let stamped = files.iter().filter(|f| f.stamped.is_some()).count();
    let manifest = serde_json::to_vec_pretty(&StampManifest { files, stamped }).map_err(io)?;
    zip.start_file("manifest.json", opts).map_err(io)?;
    zip.write_all(&manifest)?;
    zip.finish().map_err(io)?;
    send(pending.take()).await
}
