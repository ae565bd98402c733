//! `kiln inspect NAME`: an image when one has the name, else a container
//! (as `docker inspect`), `--type` to choose, and "no such object" when
//! neither has it.

use serde_json::Value;

use crate::require_root;
use crate::run::Containers;
use crate::util::*;

fn inspect(root: &TestRoot, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["inspect"];
    all.extend_from_slice(args);
    serde_json::from_str(&root.ok(all)).unwrap()
}

#[test]
fn images_first_then_containers() {
    require_root!();
    let root = TestRoot::with_busybox();
    let _c = Containers(&root);
    let id = root.ok([
        "run",
        "-d",
        "--name",
        "svc",
        "--network",
        "none",
        "-v",
        "/scratch",
        "busybox",
        "sleep",
        "30",
    ]);
    let id = id.trim();
    // a container that shares its name with an image
    root.ok([
        "create",
        "--name",
        "busybox",
        "--network",
        "none",
        "busybox",
        "true",
    ]);

    let both = inspect(&root, &["busybox", "svc"]);
    assert_eq!(both.len(), 2);
    assert_eq!(
        both[0]["RepoTags"][0], "busybox:latest",
        "the image comes first"
    );
    let c = &both[1];
    // docker's key order, not an alphabetical one
    let text = root.ok(["inspect", "svc"]);
    let at = |k: &str| text.find(&format!("\"{k}\":")).unwrap();
    assert!(at("Id") < at("Created") && at("Created") < at("State") && at("State") < at("Name"));
    assert!(at("Status") < at("Running") && at("Pid") < at("ExitCode"));
    assert_eq!(c["Id"], id);
    assert_eq!(c["Name"], "/svc");
    assert!(c["Created"].as_str().unwrap().contains('T'));
    assert_eq!(c["State"]["Status"], "running");
    assert_eq!(c["State"]["Running"], true);
    assert_eq!(c["State"]["OOMKilled"], false);
    let pid = c["State"]["Pid"].as_i64().unwrap();
    assert!(pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert_eq!(c["State"]["FinishedAt"], "0001-01-01T00:00:00Z");
    assert_eq!(c["Config"]["Cmd"], serde_json::json!(["sleep", "30"]));
    assert_eq!(c["Config"]["Image"], "busybox");
    assert_eq!(c["Image"], both[0]["Id"]);
    assert_eq!(c["Mounts"][0]["Destination"], "/scratch");
    assert_eq!(c["Mounts"][0]["Type"], "volume");
    assert!(c["NetworkSettings"]["Ports"].is_object());

    // by id prefix too, and --type picks one kind
    assert_eq!(inspect(&root, &[&id[..12]])[0]["Name"], "/svc");
    let named = inspect(&root, &["--type", "container", "busybox"]);
    assert_eq!(named[0]["Name"], "/busybox");
    assert_eq!(named[0]["State"]["Status"], "created");
    let out = root.run(["inspect", "--type", "image", "svc"]);
    assert_eq!(out.status.code(), Some(1));

    root.ok(["kill", "svc"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let c = loop {
        let c = inspect(&root, &["svc"]).remove(0);
        if c["State"]["Status"] != "running" || std::time::Instant::now() > deadline {
            break c;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(c["State"]["Status"], "exited");
    assert_eq!(c["State"]["Running"], false);
    assert_eq!(c["State"]["ExitCode"], 137);
    assert_eq!(c["State"]["Pid"], 0);
    assert_ne!(c["State"]["FinishedAt"], "0001-01-01T00:00:00Z");

    // neither: an error for that name, the others still printed
    let out = root.run(["inspect", "svc", "nothing-here"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no such object: nothing-here"),
        "{}",
        stderr(&out)
    );
    let printed: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(printed.len(), 1);
}
