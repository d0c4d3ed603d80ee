//! pixseal-media: the in-memory ingest pipeline (SPEC §1 sniff → decode → orient → colour →
//! scrub → encode), and the video container's allow-list rewrite (`video`). Bytes in, bytes out:
//! this crate opens no file and writes nothing anywhere but where its caller says.

mod admit;
mod bmff;
mod boxes;
pub mod colour;
pub mod decode;
pub mod encode;
mod error;
mod heif;
pub mod jpeg;
mod jxl;
mod limits;
pub mod orient;
mod pipeline;
mod pixels;
pub mod probe;
pub mod resize;
mod sniff;
pub mod video;

pub use admit::admit;
pub use colour::ColourOutcome;
pub use encode::OutputFormat;
pub use error::IngestError;
pub use limits::{AnimatedPolicy, Limits};
pub use pipeline::{Decoded, Options, Pipeline, Sanitized};
pub use pixels::Pixels;
pub use sniff::{Format, sniff};
pub use video::{VideoFormat, VideoInfo, VideoLimits, sniff_video};
