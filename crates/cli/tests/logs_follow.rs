//! `logs -f` across rotations (issue 11): the follower reads each rotated file to
//! its end before it moves on, so every line arrives, once and in order.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::process::Stdio;

#[test]
fn logs_follow_keeps_every_line_across_rotations() {
    let b = Berth::with_busybox();
    const N: usize = 20_000;
    // Small files, and enough of them that a rotation never deletes one the
    // follower has not opened yet: what is checked is the switch between files.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "c1",
        "--log-opt",
        "max-size=8k",
        "--log-opt",
        "max-file=1000",
        "busybox",
        "sh",
        "-c",
        &format!(
            "while [ ! -e /go ]; do sleep 0.05; done; i=0; while [ $i -lt {N} ]; do echo line-$i; i=$((i+1)); done"
        ),
    ]);
    let follower = b
        .cmd(&["logs", "-f", "c1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    b.ok(&["exec", "c1", "touch", "/go"]);
    let out = follower.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got = text(&out.stdout);
    let lines: Vec<&str> = got.lines().collect();
    let missing: Vec<usize> = (0..N)
        .filter(|i| !lines.contains(&format!("line-{i}").as_str()))
        .take(5)
        .collect();
    assert_eq!(
        lines.len(),
        N,
        "{} lines delivered of {N}; first missing: {missing:?}",
        lines.len()
    );
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(*l, format!("line-{i}"), "line {i} out of order");
    }
    // The log did rotate many times.
    let rotated = std::fs::read_dir(b.root().join("containers"))
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .filter(|f| f.file_name().to_string_lossy().contains("-json.log."))
        .count();
    assert!(rotated > 10, "only {rotated} rotated files");
    b.ok(&["rm", "c1"]);
}
