//! `pixseal sanitize` and `pixseal stamp` on MP4/MOV clips made by ffmpeg: the outputs the
//! commands write carry none of the clip's metadata and the same samples; a stamped video's
//! manifest is what the reference C2PA reader (c2pa-python) and `pixseal verify` both trust,
//! and both call a changed sample tampered; hostile videos are refused with exit 2.

mod common;

use std::path::Path;

use common::{json_lines, pixseal};
use pixseal_testkit::c2pa_ref;
use pixseal_testkit::video::{
    Clip, assert_no_metadata, decode_frames, exiftool, find_box, packet_hashes, put_u32,
};
use serde_json::Value;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn sanitize_writes_a_clean_video_with_the_same_samples() {
    let dir = tempfile::tempdir().unwrap();
    let input = Clip::iphone_like().make();
    assert!(
        exiftool(&input).contains("iPhone 15 Pro"),
        "the clip carries a model"
    );
    let clip = write(dir.path(), "IMG_0001.MOV", &input);
    let out = dir.path().join("out");
    let o = pixseal(&["--json", "sanitize", &clip, "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let line = &json_lines(&o)[0];
    assert_eq!(line["status"], "ok", "{line}");
    assert_eq!(line["format"], "mov", "{line}");
    let output = line["output"].as_str().unwrap();
    assert!(output.ends_with("IMG_0001.mov"), "{line}");
    let removed: Vec<&str> = line["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(removed.contains(&"tmcd track"), "{line}");
    // ffmpeg writes Apple's keys (and its ©-tags) inside the movie's user data.
    assert!(removed.contains(&"udta"), "{line}");
    let codecs: Vec<&Value> = line["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["codec"])
        .collect();
    assert_eq!(codecs, ["avc1", "mp4a"], "{line}");

    let bytes = std::fs::read(output).unwrap();
    assert_eq!(line["bytes"], bytes.len(), "{line}");
    assert_no_metadata(&bytes, "sanitize");
    assert_eq!(packet_hashes(&bytes), packet_hashes(&input));
    // No stray file beside the output (the temporary one was renamed).
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
}

#[test]
fn hostile_videos_are_refused_with_exit_2_and_leave_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let ok = Clip::plain().make();
    let mut long = ok.clone();
    let mvhd = find_box(&long, &["moov", "mvhd"]).unwrap();
    let ts = u32::from_be_bytes(long[mvhd.start + 20..mvhd.start + 24].try_into().unwrap());
    put_u32(&mut long, mvhd.start + 24, ts * 3600);
    let cut = ok[..ok.len() - 1000].to_vec();
    let good = write(dir.path(), "good.mp4", &ok);
    let long = write(dir.path(), "long.mp4", &long);
    let cut = write(dir.path(), "cut.mp4", &cut);
    let out = dir.path().join("out");
    let o = pixseal(&[
        "--json",
        "sanitize",
        &long,
        &cut,
        &good,
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut codes: Vec<(String, String)> = json_lines(&o)
        .iter()
        .map(|l| {
            let name = Path::new(l["input"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let code = l["code"].as_str().unwrap_or("ok").to_string();
            (name, code)
        })
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        [
            ("cut.mp4".into(), "truncated".into()),
            ("good.mp4".into(), "ok".into()),
            ("long.mp4".into(), "video_too_long".into())
        ]
    );
    let left: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        ["good.mp4"],
        "only the good video's output is written"
    );
}

#[test]
fn a_stamped_video_is_verified_by_the_reference_reader_and_by_pixseal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let o = pixseal(&["--data-dir", data_s, "keys", "init"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let root = data.join("c2pa/root.pem");
    let root_s = root.to_str().unwrap();
    let input = Clip::iphone_like().make();
    let clip = write(dir.path(), "clip.mov", &input);
    let out = dir.path().join("out");
    let o = pixseal(&[
        "--data-dir",
        data_s,
        "--json",
        "stamp",
        &clip,
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let line = &json_lines(&o)[0];
    let stamped = line["output"].as_str().unwrap().to_string();
    let proof_id = line["proof_id"].as_str().unwrap();
    assert!(proof_id.starts_with("px_"), "{line}");
    let bytes = std::fs::read(&stamped).unwrap();
    assert_eq!(line["bytes"], bytes.len(), "{line}");
    assert_no_metadata(&bytes, "stamp");
    // The manifest is added around the samples, not into them: its box right after `ftyp`,
    // where it was reserved before the file was hashed.
    assert_eq!(packet_hashes(&bytes), packet_hashes(&input));
    let ftyp = find_box(&bytes, &["ftyp"]).unwrap();
    let manifest = find_box(&bytes, &["uuid"]).unwrap();
    assert_eq!(manifest.start, ftyp.end, "the manifest box follows ftyp");
    assert_eq!(line["manifest_bytes"], manifest.len(), "{line}");
    assert_eq!(decode_frames(&bytes), Ok(30));

    let reference: Value =
        serde_json::from_str(&c2pa_ref(&["read", &stamped, "--trust", root_s])[0]).unwrap();
    assert_eq!(reference["state"], "Trusted", "{reference:#}");
    assert_eq!(
        reference["assertions"]["org.pixseal.proof"]["proof_id"], proof_id,
        "{reference:#}"
    );
    // The keyframes' PDQ hashes, each over its time span, as the reference reads them.
    let hashed = line["keyframes_hashed"].as_u64().unwrap();
    assert!(hashed >= 1, "{line}");
    let binding = reference["assertion_list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["label"] == "c2pa.soft-binding")
        .unwrap_or_else(|| panic!("no soft binding: {reference:#}"));
    let blocks = binding["data"]["blocks"].as_array().unwrap();
    assert_eq!(binding["data"]["alg"], "org.pixseal.pdq.1");
    assert_eq!(blocks.len() as u64, hashed);
    assert_eq!(blocks[0]["scope"]["timespan"]["start"], 0, "{binding}");
    let ours = json_lines(&pixseal(&[
        "--data-dir",
        data_s,
        "--json",
        "verify",
        &stamped,
    ]))
    .remove(0);
    assert_eq!(ours["verdict"], "verified", "{ours}");

    // One byte of one sample changed: both readers call it tampered, neither trusts it.
    let mut changed = bytes.clone();
    let mdat = find_box(&changed, &["mdat"]).unwrap();
    let at = mdat.start + mdat.len() / 2;
    changed[at] ^= 0x40;
    let changed_path = write(dir.path(), "changed.mov", &changed);
    let reference: Value =
        serde_json::from_str(&c2pa_ref(&["read", &changed_path, "--trust", root_s])[0]).unwrap();
    assert_eq!(reference["state"], "Invalid", "{reference:#}");
    let ours = json_lines(&pixseal(&[
        "--data-dir",
        data_s,
        "--json",
        "verify",
        &changed_path,
    ]))
    .remove(0);
    assert_eq!(ours["verdict"], "tampered", "{ours}");
}

/// `pixseal stamp` of `clip` in a fresh data dir (extra arguments before the file); the JSON
/// line, the stamped bytes and the trust root's path.
fn stamp_clip(dir: &Path, name: &str, clip: &[u8], extra: &[&str]) -> (Value, Vec<u8>, String) {
    let data = dir.join("data");
    let data_s = data.to_str().unwrap();
    if !data.exists() {
        let o = pixseal(&["--data-dir", data_s, "keys", "init"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let input = write(dir, name, clip);
    let out = dir.join("out");
    let mut args = vec!["--data-dir", data_s, "--json", "stamp"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[&input, "-o", out.to_str().unwrap()]);
    let o = pixseal(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let line = json_lines(&o).remove(0);
    let bytes = std::fs::read(line["output"].as_str().unwrap()).unwrap();
    let root = data.join("c2pa/root.pem").to_str().unwrap().to_string();
    (line, bytes, root)
}

fn verify_bytes(dir: &Path, name: &str, bytes: &[u8]) -> Value {
    let data = dir.join("data");
    let path = write(dir, name, bytes);
    json_lines(&pixseal(&[
        "--data-dir",
        data.to_str().unwrap(),
        "--json",
        "verify",
        &path,
    ]))
    .remove(0)
}

#[test]
fn a_reencoded_stamp_carries_its_proof_id_through_a_half_bitrate_copy() {
    let dir = tempfile::tempdir().unwrap();
    // Turned a quarter, as a phone held upright records: the frames are marked upright.
    let input = Clip {
        seconds: 3.0,
        width: 640,
        height: 360,
        ..Clip::iphone_like()
    }
    .make();
    let (line, bytes, root) = stamp_clip(dir.path(), "clip.mov", &input, &["--reencode"]);
    let proof_id = line["proof_id"].as_str().unwrap().to_string();
    assert_eq!(line["watermarked"], true, "{line}");
    assert_no_metadata(&bytes, "stamp --reencode");
    // New frames (the encoder's), all of them, upright, and the sound kept.
    assert_ne!(packet_hashes(&bytes), packet_hashes(&input));
    assert_eq!(decode_frames(&bytes), Ok(90));
    let probe = pixseal_testkit::video::ffprobe(&bytes);
    assert!(
        probe.contains("width=360") && probe.contains("height=640"),
        "{probe}"
    );
    assert!(probe.contains("codec_name=\"aac\""), "{probe}");

    let stamped = write(dir.path(), "stamped.mov", &bytes);
    let reference: Value =
        serde_json::from_str(&c2pa_ref(&["read", &stamped, "--trust", &root])[0]).unwrap();
    assert_eq!(reference["state"], "Trusted", "{reference:#}");
    let text = reference.to_string();
    assert!(text.contains("c2pa.watermarked.bound"), "{reference:#}");
    assert!(text.contains("org.pixseal.watermark.1"), "{reference:#}");
    assert_eq!(
        verify_bytes(dir.path(), "again.mov", &bytes)["verdict"],
        "verified"
    );

    // Shared as a sharing site would: manifest and metadata gone, H.264 at half the bit rate.
    let copy = pixseal_testkit::video::reencode_half_bitrate(&bytes);
    let v = verify_bytes(dir.path(), "copy.mp4", &copy);
    assert_eq!(v["verdict"], "watermark_only", "{v}");
    assert_eq!(v["proof_id"], proof_id.as_str(), "{v}");

    // A server reads the same watermark from the copy's frames; it shows no record, as a CLI
    // stamp is offline and no server knows its proof.
    let v = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let app = pixseal_testkit::TestApp::spawn(pixseal_testkit::TestApp::config()).await;
        let r = app
            .client
            .post(format!("{}/v1/verify", app.url))
            .body(copy.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()
    });
    assert_eq!(v["verdict"], "watermark_only", "{v}");
    assert_eq!(v["proof_id"], proof_id.as_str(), "{v}");
    assert!(v["record"].is_null(), "{v}");

    // Without --reencode the frames carry nothing: the same copy is not stamped.
    let (line, plain, _) = stamp_clip(dir.path(), "clip2.mov", &input, &[]);
    assert_eq!(line["watermarked"], false, "{line}");
    let v = verify_bytes(
        dir.path(),
        "plain-copy.mp4",
        &pixseal_testkit::video::reencode_half_bitrate(&plain),
    );
    assert_eq!(v["verdict"], "not_stamped", "{v}");
}
