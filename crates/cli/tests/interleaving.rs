//! The CLI batch as one worker: hostile and valid pictures in random orders through one
//! `pixseal sanitize --jobs 1` run give, for every picture, exactly what a process of its own
//! gives (the same output bytes, or the same refusal code).

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::*;

/// What `pixseal sanitize --json` said of each input, by file name: output bytes or error code.
fn results(out: &std::process::Output, dir: &Path) -> HashMap<String, Result<Vec<u8>, String>> {
    json_lines(out)
        .into_iter()
        .map(|l| {
            let input = l["input"].as_str().unwrap();
            let name = Path::new(input)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let r = match l["status"].as_str() {
                Some("ok") => Ok(std::fs::read(dir.join(l["output"].as_str().unwrap())).unwrap()),
                _ => Err(l["code"].as_str().unwrap().to_string()),
            };
            (name, r)
        })
        .collect()
}

#[test]
fn any_order_through_one_batch_gives_what_a_process_of_its_own_gives() {
    let inputs = pixseal_testkit::hostile::mixed_inputs();
    let work = tempfile::tempdir().unwrap();
    // Each picture alone, in a process of its own.
    let mut alone = HashMap::new();
    for (i, (name, bytes)) in inputs.iter().enumerate() {
        let dir = work.path().join(format!("alone-{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
        let out = pixseal(&[
            "sanitize",
            dir.join(name).to_str().unwrap(),
            "-o",
            dir.join("out").to_str().unwrap(),
            "--json",
        ]);
        alone.extend(results(&out, Path::new("")));
    }
    assert!(alone.values().filter(|r| r.is_err()).count() >= 6);
    // Then shuffled orders (file names decide the order) through one batch.
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for round in 0..4 {
        let dir = work.path().join(format!("batch-{round}"));
        std::fs::create_dir_all(dir.join("in")).unwrap();
        let mut names = Vec::new();
        for (name, bytes) in &inputs {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let shuffled = format!("{:05}-{name}", seed % 100_000);
            std::fs::write(dir.join("in").join(&shuffled), bytes).unwrap();
            names.push((shuffled, name.clone()));
        }
        let out = pixseal(&[
            "sanitize",
            dir.join("in").to_str().unwrap(),
            "-o",
            dir.join("out").to_str().unwrap(),
            "--jobs",
            "1",
            "--json",
        ]);
        let got = results(&out, Path::new(""));
        for (shuffled, name) in &names {
            assert!(
                got[shuffled] == alone[name],
                "round {round}: {name} differs from its own process"
            );
        }
    }
}
