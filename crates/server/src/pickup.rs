//! `GET /v1/pickups/{token}`: the one download of a file stamped with `deliver=link`. When
//! the last byte is handed to the connection the link is spent and the file erased (signed
//! receipt); a download that breaks off gives the link back.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::{Frame, SizeHint};
use pixseal_service::pickup::PickupGuard;

use crate::error::*;
use crate::stamp::PROOF_ID;
use crate::{ApiError, AppState};

/// Handed to the connection in chunks of this size; the last one completes the pickup.
const CHUNK: usize = 64 * 1024;

/// The picked-up file, and the guard told when its last chunk goes out.
struct PickupBody {
    left: Bytes,
    done: PickupGuard,
}

impl hyper::body::Body for PickupBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.left.is_empty() {
            return Poll::Ready(None);
        }
        let n = self.left.len().min(CHUNK);
        let chunk = self.left.split_to(n);
        if self.left.is_empty() {
            self.done.completed();
        }
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.left.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left.len() as u64)
    }
}

#[utoipa::path(
    get,
    path = "/v1/pickups/{token}",
    operation_id = "pickup",
    tag = "stamp",
    summary = "Download, once, a file stamped with deliver=link; it is erased when the download completes (public: the link is the secret). 409 pickup_in_progress while another download runs, 410 pickup_gone once downloaded or expired",
    params(("token" = String, Path, description = "the secret of the link POST /v1/stamp?deliver=link gave")),
    responses(
        (status = 200, description = "the stamped file (header Pixseal-Proof-Id); erased with a signed receipt once sent", content(
            ("image/jpeg"),
            ("image/webp"),
            ("image/png"),
        )),
        PickupErrors,
    ),
)]
pub async fn pickup(
    State(s): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let got = s.open_pickup(&token).await?;
    let extension = got.content_type.rsplit('/').next().unwrap_or("bin");
    let extension = if extension == "jpeg" {
        "jpg"
    } else {
        extension
    };
    let disposition = format!("attachment; filename=\"{}.{extension}\"", got.proof_id);
    let header_of = |v: &str| HeaderValue::from_str(v).expect("ids and media types are ASCII");
    let left = s.hold_answer(got.bytes).await?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, header_of(&got.content_type)),
            (header::CONTENT_DISPOSITION, header_of(&disposition)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (PROOF_ID, header_of(&got.proof_id)),
        ],
        axum::body::Body::new(PickupBody {
            left,
            done: got.done,
        }),
    )
        .into_response())
}
