//! Rootless berth (issue 16) and a registry: an unprivileged user pushes an
//! image to a local registry (Debian's docker-registry on 127.0.0.1), and
//! another user pulls it into an empty rootless root: the image ID is the
//! pushed image's and root's pull of the same reference.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/user.rs"]
mod user;

use common::*;
use user::*;

fn image_id(u: &User, name: &str) -> String {
    u.ok(&["image", "inspect", "-f", "{{.Id}}", name])
        .trim()
        .to_owned()
}

#[test]
fn a_user_pushes_and_another_pulls_root_s_image_id() {
    let reg = Registry::start();
    let u = User::new();
    u.import_busybox();
    // A layer of its own on busybox, with a whiteout (a removed file).
    u.ok(&[
        "run",
        "--name",
        "layer",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo pushed > /note && rm /bin/vi && ln /note /hard && ln -s note /sym \
         && touch /owned && chown 1234:5678 /owned && chmod 4750 /owned \
         && mkdir -p /usr/share && rm -rf /usr/share && mkdir /usr/share && echo x > /usr/share/x",
    ]);
    let r = format!("{}/rootless/bb:1", reg.addr);
    u.ok(&["commit", "layer", &r]);
    let pushed = image_id(&u, &r);
    let out = u.ok(&["push", &r]);
    // Docker's last line: `1: digest: sha256:… size: N`.
    let digest = out
        .lines()
        .find_map(|l| l.split("digest: ").nth(1))
        .and_then(|d| d.split_whitespace().next())
        .unwrap_or_else(|| panic!("no digest in {out}"))
        .to_owned();

    // Another user, an empty root.
    let v = User::new();
    assert_eq!(v.ok(&["images", "-q"]), "");
    v.ok(&["pull", &r]);
    assert_eq!(image_id(&v, &r), pushed);
    assert_eq!(
        v.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            &r,
            "sh",
            "-c",
            "cat /note; ls /bin/vi || echo gone"
        ]),
        "pushed\ngone\n"
    );

    assert_eq!(
        v.ok(&["image", "inspect", "-f", "{{index .RepoDigests 0}}", &r]),
        format!("{}/rootless/bb@{digest}\n", reg.addr)
    );
    // By digest too, after the image went.
    v.ok(&["rmi", &r]);
    let by_digest = format!("{}/rootless/bb@{digest}", reg.addr);
    v.ok(&["pull", &by_digest]);
    assert_eq!(image_id(&v, &by_digest), pushed);

    // Root's pull of the same reference: the same image, with the user's
    // container's owners, modes and links as the container saw them.
    let root = Berth::new();
    root.ok(&["pull", &r]);
    assert_eq!(root.image_id(&r), pushed);
    let seen = "stat -c '%n %u:%g %a %h' /owned /hard; readlink /sym; ls /usr/share";
    assert_eq!(
        root.ok(&["run", "--rm", "--network", "none", &r, "sh", "-c", seen]),
        "/owned 1234:5678 4750 1\n/hard 0:0 644 2\nnote\nx\n"
    );
    assert_eq!(
        v.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            &by_digest,
            "sh",
            "-c",
            seen
        ]),
        "/owned 1234:5678 4750 1\n/hard 0:0 644 2\nnote\nx\n"
    );
    assert_eq!(
        root.ok(&["image", "inspect", "-f", "{{index .RepoDigests 0}}", &r]),
        format!("{by_digest}\n")
    );
}
