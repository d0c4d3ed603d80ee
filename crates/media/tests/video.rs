//! MP4/MOV: clips made by ffmpeg with a phone's metadata come out with none of it (as ffprobe,
//! exiftool and a byte scan see them) and with the very samples they went in with; every limit
//! is read from the boxes; hostile box structures are refused with the code naming the lie.

use pixseal_media::VideoLimits;
use pixseal_media::video::{self, TrackKind, VideoFormat, VideoInfo};
use pixseal_testkit::video::{
    Audio, Clip, Codec, Metadata, assert_no_metadata, decode_frames, exiftool, ffprobe, find_box,
    packet_hashes, put_u32,
};

fn sanitize(input: &[u8], limits: &VideoLimits) -> Result<(Vec<u8>, VideoInfo), String> {
    let mut out = Vec::new();
    video::sanitize(input, limits, &mut out)
        .map(|info| (out, info))
        .map_err(|e| format!("{}: {e}", e.code()))
}

fn code(input: &[u8], limits: &VideoLimits) -> String {
    let mut out = Vec::new();
    let e = video::sanitize(input, limits, &mut out).expect_err("must be refused");
    assert!(out.is_empty(), "nothing is written for a refused video");
    e.code().to_string()
}

#[test]
fn phone_clips_lose_every_piece_of_metadata_and_keep_their_samples() {
    let clips = [
        Clip::iphone_like(),
        Clip {
            codec: Codec::Hevc,
            width: 480,
            height: 270,
            ..Clip::default()
        },
        Clip {
            codec: Codec::Av1,
            audio: Some(Audio::Opus),
            faststart: true,
            rotate: Some(180),
            ..Clip::default()
        },
    ];
    for clip in clips {
        let what = format!("{clip:?}");
        let input = clip.make();
        // The clip really carries what must go (else this test could not fail).
        let before = format!("{}{}", ffprobe(&input), exiftool(&input));
        assert!(before.contains("Alice's birthday"), "{what}: {before}");
        assert!(before.contains("37.3349"), "{what}: {before}");

        let (out, info) = sanitize(&input, &VideoLimits::default()).unwrap();
        assert_eq!(
            info.format,
            if clip.mov {
                VideoFormat::Mov
            } else {
                VideoFormat::Mp4
            }
        );
        assert_eq!(info.bytes, out.len() as u64);
        assert_eq!((info.width, info.height), (clip.width, clip.height));
        assert!((900..=1100).contains(&info.duration_ms), "{what}: {info:?}");
        let kinds: Vec<_> = info.tracks.iter().map(|t| t.kind).collect();
        assert_eq!(kinds, [TrackKind::Video, TrackKind::Audio], "{what}");
        assert!(info.tracks[0].keyframes < info.tracks[0].samples, "{what}");
        if clip.timecode {
            assert!(info.removed.contains(&"tmcd track".to_string()), "{info:?}");
        }
        assert!(
            info.removed.iter().any(|r| r == "udta" || r == "meta"),
            "{what}: {info:?}"
        );
        assert_no_metadata(&out, &what);

        // The same packets, byte for byte, and every frame decodes.
        assert_eq!(packet_hashes(&out), packet_hashes(&input), "{what}");
        assert_eq!(decode_frames(&out), Ok(30), "{what}");
        // The display rotation stays: it is how the video is meant to be seen.
        let rotation = |p: &str| {
            p.lines()
                .find(|l| l.contains("rotation="))
                .map(|l| l.split('=').nth(1).unwrap().to_string())
        };
        assert_eq!(
            rotation(&before).is_some(),
            clip.rotate.is_some(),
            "{what}: {before}"
        );
        assert_eq!(rotation(&ffprobe(&out)), rotation(&before), "{what}");

        // A probe says the same without writing; a second pass changes nothing more.
        let probed = video::probe(&input[..], &VideoLimits::default()).unwrap();
        assert_eq!(probed.tracks, info.tracks);
        let (again, _) = sanitize(&out, &VideoLimits::default()).unwrap();
        assert_eq!(again, out, "{what}: sanitizing is idempotent");
    }
}

#[test]
fn a_box_added_after_ftyp_moves_the_samples_and_their_offsets_with_it() {
    let input = Clip::iphone_like().make();
    let (plain, _) = sanitize(&input, &VideoLimits::default()).unwrap();
    let mut extra = vec![0; 4];
    put_u32(&mut extra, 0, 8 + 16 + 100);
    extra.extend_from_slice(b"uuid");
    extra.extend_from_slice(&[0xD8; 16]);
    extra.extend_from_slice(&[0x5A; 100]);
    let mut out = Vec::new();
    let (info, at) =
        video::sanitize_with(&input[..], &VideoLimits::default(), &extra, &mut out).unwrap();
    assert_eq!(info.bytes, out.len() as u64);
    assert_eq!(out.len(), plain.len() + extra.len());
    let at = at as usize;
    assert_eq!(&out[..at], &plain[..at], "the ftyp comes first");
    assert_eq!(&out[at..at + extra.len()], &extra[..]);
    // Every chunk offset was moved: the same packets, every frame decodes.
    assert_eq!(packet_hashes(&out), packet_hashes(&input));
    assert_eq!(decode_frames(&out), Ok(30));
    // The box is not kept by a sanitize: it is the caller's, not the video's.
    let (again, info) = sanitize(&out, &VideoLimits::default()).unwrap();
    assert_eq!(again, plain);
    assert!(info.removed.contains(&"uuid".to_string()), "{info:?}");

    // Anything but whole boxes is refused before a byte is written.
    for bad in [
        &extra[..extra.len() - 1],
        &extra[..7],
        &[0, 0, 0, 4, 1, 2, 3, 4][..],
    ] {
        let mut out = Vec::new();
        let e = video::sanitize_with(&input[..], &VideoLimits::default(), bad, &mut out)
            .expect_err("not a whole box");
        assert_eq!(e.code(), "internal");
        assert!(out.is_empty());
    }
}

#[test]
fn samples_are_written_in_mdat_boxes_of_at_most_4_mib() {
    let input = Clip {
        seconds: 8.0,
        width: 1280,
        height: 720,
        ..Clip::default()
    }
    .make();
    let (out, _) = sanitize(&input, &VideoLimits::default()).unwrap();
    // The top level: ftyp, moov, then only mdat boxes, each within the bound, together
    // holding every sample (the same packets) and nothing else.
    let mut at = 0;
    let mut kinds = Vec::new();
    let mut payload = 0;
    while at < out.len() {
        let size = u32::from_be_bytes(out[at..at + 4].try_into().unwrap()) as usize;
        let kind = std::str::from_utf8(&out[at + 4..at + 8])
            .unwrap()
            .to_string();
        if kind == "mdat" {
            assert!(size - 8 <= 4 << 20, "an mdat of {size} bytes");
            payload += size - 8;
        }
        kinds.push(kind);
        at += size;
    }
    assert_eq!(at, out.len());
    assert_eq!(kinds[..2], ["ftyp", "moov"]);
    assert!(
        kinds.len() > 3,
        "{} MB in one mdat: {kinds:?}",
        out.len() >> 20
    );
    assert!(kinds[2..].iter().all(|k| k == "mdat"), "{kinds:?}");
    // framemd5 lines: stream, dts, pts, duration, size, hash.
    let samples: usize = packet_hashes(&input)
        .iter()
        .map(|l| {
            l.split(',')
                .nth(4)
                .unwrap()
                .trim()
                .parse::<usize>()
                .unwrap()
        })
        .sum();
    assert_eq!(
        payload, samples,
        "the mdat boxes hold the samples and nothing else"
    );
    assert_eq!(packet_hashes(&out), packet_hashes(&input));
    assert_eq!(decode_frames(&out), Ok(240));
}

#[test]
fn a_file_read_from_disk_streams_to_the_same_bytes() {
    let input = Clip::default().make();
    let dir = std::env::temp_dir().join(format!("pixseal-video-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("in.mp4");
    std::fs::write(&path, &input).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let mut from_file = Vec::new();
    video::sanitize(&file, &VideoLimits::default(), &mut from_file).unwrap();
    let (from_memory, _) = sanitize(&input, &VideoLimits::default()).unwrap();
    assert_eq!(from_file, from_memory);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_limit_is_read_from_the_boxes_and_named() {
    let input = Clip {
        seconds: 2.0,
        width: 640,
        height: 360,
        ..Clip::default()
    }
    .make();
    let ok = VideoLimits::default();
    assert!(sanitize(&input, &ok).is_ok());
    let cases = [
        (
            VideoLimits {
                max_seconds: 1,
                ..ok
            },
            "video_too_long",
            "max_seconds limit of 1",
        ),
        (
            VideoLimits {
                max_width: 600,
                ..ok
            },
            "dimensions_too_large",
            "640x360",
        ),
        // Portrait limits apply to the short side: 360 is over a 300-pixel short side.
        (
            VideoLimits {
                max_height: 300,
                ..ok
            },
            "dimensions_too_large",
            "300",
        ),
        (
            VideoLimits {
                max_tracks: 1,
                ..ok
            },
            "decode_too_costly",
            "max_tracks limit of 1",
        ),
        (
            VideoLimits {
                max_samples: 50,
                ..ok
            },
            "decode_too_costly",
            "max_samples limit of 50",
        ),
        (
            VideoLimits {
                max_box_depth: 3,
                ..ok
            },
            "decode_too_costly",
            "max_box_depth limit of 3",
        ),
        (
            VideoLimits {
                max_file_bytes: 1000,
                ..ok
            },
            "file_too_large",
            "limit of 1000",
        ),
    ];
    for (limits, want, named) in cases {
        let mut out = Vec::new();
        let e = video::sanitize(&input[..], &limits, &mut out).unwrap_err();
        assert_eq!(e.code(), want, "{limits:?}: {e}");
        assert!(e.to_string().contains(named), "{e}");
    }
}

/// A real clip with the moov first, to edit into hostile variants.
fn base() -> Vec<u8> {
    Clip::plain().make()
}

const STBL: [&str; 5] = ["moov", "trak", "mdia", "minf", "stbl"];

fn stbl_box(b: &[u8], name: &str) -> std::ops::Range<usize> {
    let mut path = STBL.to_vec();
    path.push(name);
    find_box(b, &path).unwrap_or_else(|| panic!("no {name}"))
}

#[test]
fn hostile_boxes_are_refused_with_the_code_naming_the_lie() {
    let ok = base();
    let limits = VideoLimits::default();
    assert!(sanitize(&ok, &limits).is_ok());
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();

    // The moov claims more bytes than the file has.
    let mut b = ok.clone();
    let moov = find_box(&b, &["moov"]).unwrap();
    put_u32(&mut b, moov.start, (ok.len() + 1000) as u32);
    cases.push(("moov size past the end", b, "truncated"));

    // A track claims more bytes than the moov holding it.
    let mut b = ok.clone();
    let trak = find_box(&b, &["moov", "trak"]).unwrap();
    put_u32(&mut b, trak.start, (moov.len() + 8) as u32);
    cases.push(("trak larger than moov", b, "corrupt"));

    // A box smaller than its own header.
    let mut b = ok.clone();
    let mvhd = find_box(&b, &["moov", "mvhd"]).unwrap();
    put_u32(&mut b, mvhd.start, 4);
    cases.push(("box of size 4", b, "corrupt"));

    // 2^32 - 1 sample sizes declared in a box of a few hundred bytes.
    let mut b = ok.clone();
    let stsz = stbl_box(&b, "stsz");
    put_u32(&mut b, stsz.start + 16, u32::MAX);
    cases.push(("stsz of 2^32-1 entries", b.clone(), "decode_too_costly"));

    // The mdat cut short: the file ends before its samples do.
    let mdat = find_box(&ok, &["mdat"]).unwrap();
    let b = ok[..mdat.start + (mdat.len() / 2)].to_vec();
    cases.push(("mdat past the end", b, "truncated"));

    // Chunk offsets that point back into the moov (the header read again as samples), and
    // every chunk at the same place (a file that would copy its samples many times over).
    let mut b = ok.clone();
    let stco = stbl_box(&b, "stco");
    put_u32(&mut b, stco.start + 16, moov.start as u32 + 8);
    cases.push(("chunk inside the moov", b, "corrupt"));
    let mut b = ok.clone();
    let count = u32::from_be_bytes(b[stco.start + 12..stco.start + 16].try_into().unwrap());
    assert!(count > 1);
    let first = u32::from_be_bytes(b[stco.start + 16..stco.start + 20].try_into().unwrap());
    for i in 0..count as usize {
        put_u32(&mut b, stco.start + 16 + 4 * i, first);
    }
    cases.push(("every chunk at one offset", b, "corrupt"));

    // A 60-minute duration claimed by the movie header alone, and by the sample timing.
    let mut b = ok.clone();
    let timescale = u32::from_be_bytes(b[mvhd.start + 20..mvhd.start + 24].try_into().unwrap());
    put_u32(&mut b, mvhd.start + 24, timescale * 3600);
    cases.push(("mvhd says 60 minutes", b, "video_too_long"));
    let mut b = ok.clone();
    let stts = stbl_box(&b, "stts");
    put_u32(&mut b, stts.start + 20, 1 << 30);
    cases.push(("stts says hours", b, "video_too_long"));

    // Sample tables that disagree.
    let mut b = ok.clone();
    put_u32(&mut b, stts.start + 16, 7);
    cases.push(("stts times other samples than stsz sizes", b, "corrupt"));
    let mut b = ok.clone();
    let stsc = stbl_box(&b, "stsc");
    put_u32(&mut b, stsc.start + 16, 2);
    cases.push(("stsc not starting at chunk 1", b, "corrupt"));

    for (what, bad, want) in &cases {
        assert_eq!(&code(bad, &limits), want, "{what}");
    }

    // The same 2^32 table with no sample budget in the way is refused by its own size, before
    // anything is allocated for it.
    let mut b = ok.clone();
    put_u32(&mut b, stsz.start + 16, u32::MAX);
    let open = VideoLimits {
        max_samples: u32::MAX,
        ..limits
    };
    assert_eq!(code(&b, &open), "corrupt");
}

/// A moov holding `n` empty boxes of 8 bytes after its own, named by `kind`.
fn with_boxes(ok: &[u8], n: usize, kind: impl Fn(usize) -> [u8; 4]) -> Vec<u8> {
    let moov = find_box(ok, &["moov"]).unwrap();
    let mut b = ok[..moov.end].to_vec();
    for i in 0..n {
        b.extend_from_slice(b"\0\0\0\x08");
        b.extend_from_slice(&kind(i));
    }
    let grown = (moov.len() + 8 * n) as u32;
    put_u32(&mut b, moov.start, grown);
    // The samples follow the moov: their offsets move by what was added.
    let shift = (8 * n) as u32;
    let stco = stbl_box(&b, "stco");
    let count = u32::from_be_bytes(b[stco.start + 12..stco.start + 16].try_into().unwrap());
    for i in 0..count as usize {
        let at = stco.start + 16 + 4 * i;
        let v = u32::from_be_bytes(b[at..at + 4].try_into().unwrap());
        put_u32(&mut b, at, v + shift);
    }
    b.extend_from_slice(&ok[moov.end..]);
    b
}

#[test]
fn a_hundred_thousand_tracks_are_refused_at_the_limit() {
    let ok = base();
    let b = with_boxes(&ok, 100_000, |_| *b"trak");
    let started = std::time::Instant::now();
    let e = code(&b, &VideoLimits::default());
    assert_eq!(e, "decode_too_costly");
    // Bounded work: the tracks are counted, none of them is read.
    eprintln!("refused in {:?}", started.elapsed());
}

#[test]
fn a_moov_of_many_distinct_boxes_costs_one_pass() {
    // 200 000 boxes of different made-up types: each is dropped, the list of what was
    // removed stays short (and building it is not quadratic). No audio: `with_boxes` moves
    // the first track's chunks only.
    let ok = Clip {
        audio: None,
        ..Clip::plain()
    }
    .make();
    let b = with_boxes(&ok, 200_000, |i| {
        let n = i as u32;
        [
            b'a' + (n % 26) as u8,
            b'a' + (n / 26 % 26) as u8,
            b'a' + (n / 676 % 26) as u8,
            b'0' + (n / 17576) as u8,
        ]
    });
    let (_, info) = sanitize(&b, &VideoLimits::default()).unwrap();
    // 64 inside the moov and the "…", after what the top level left out (`free`).
    assert_eq!(info.removed.len(), 66, "{:?}", &info.removed[..3]);
    assert_eq!(info.removed.last().unwrap(), "…");
}

#[test]
fn what_is_not_a_supported_video_is_named() {
    let ok = base();
    // An audio-only file, and a video coded with a codec not taken.
    let no_video = Clip {
        metadata: Metadata::None,
        ..Clip::default()
    }
    .make();
    let mut b = no_video.clone();
    let hdlr = find_box(&b, &["moov", "trak", "mdia", "hdlr"]).unwrap();
    b[hdlr.start + 16..hdlr.start + 20].copy_from_slice(b"text");
    let e = code(&b, &VideoLimits::default());
    assert_eq!(e, "unsupported_format");

    let mut b = ok.clone();
    let stsd = stbl_box(&b, "stsd");
    b[stsd.start + 20..stsd.start + 24].copy_from_slice(b"mp4v");
    assert_eq!(code(&b, &VideoLimits::default()), "unsupported_format");
    b[stsd.start + 20..stsd.start + 24].copy_from_slice(b"encv");
    assert_eq!(code(&b, &VideoLimits::default()), "unsupported_format");

    // A fragmented MP4 is refused by name.
    let mut b = ok.clone();
    b.extend_from_slice(b"\0\0\0\x08moof");
    let mut out = Vec::new();
    let e = video::sanitize(&b[..], &VideoLimits::default(), &mut out).unwrap_err();
    assert_eq!(e.code(), "unsupported_format");
    assert!(e.to_string().contains("fragmented"), "{e}");
}

#[test]
fn keyframes_are_decoded_by_a_child_process_and_garbage_is_refused() {
    let input = Clip {
        seconds: 2.0,
        faststart: true,
        ..Clip::default()
    }
    .make();
    let (clean, info) = sanitize(&input, &VideoLimits::default()).unwrap();
    // A keyframe every 15 frames at 30 fps.
    assert_eq!(info.keyframe_times_ms, [0, 500, 1000, 1500]);
    let opts = video::FrameOptions::default();
    let frames = video::keyframes(&clean[..], &info, &opts).unwrap();
    assert_eq!(frames.len(), 4);
    for (k, f) in frames.iter().enumerate() {
        assert_eq!((f.width, f.height), (256, 256));
        assert_eq!(f.rgb.len(), 256 * 256 * 3);
        assert_eq!(f.time_ms, 500 * k as u64);
        assert!(f.until_ms > f.time_ms);
    }
    // The test pattern moves: no two keyframes alike.
    assert!(frames.windows(2).all(|w| w[0].rgb != w[1].rgb));

    // The same container with its samples overwritten: nothing decodes, and that is named.
    let mut garbage = clean.clone();
    let mdat = find_box(&garbage, &["mdat"]).unwrap();
    for (i, b) in garbage[mdat.start + 8..mdat.end].iter_mut().enumerate() {
        *b = (i * 7 % 251) as u8;
    }
    let e = video::keyframes(&garbage[..], &info, &opts).unwrap_err();
    assert_eq!(e.code(), "corrupt", "{e}");
}
