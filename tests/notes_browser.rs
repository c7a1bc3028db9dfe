//! Swagger UI of `examples/notes.rs` in a real browser: `tests/browser/swagger.mjs`
//! (playwright-core driving Debian's Chromium) logs in through "Authorize"
//! with the OAuth2 password flow and executes `GET /users/me`.
//!
//! Needs `node`, `/usr/bin/chromium` (or `$CHROMIUM`) and
//! `tests/browser/node_modules/playwright-core`; `scripts/test.sh` installs
//! them. Missing any of them FAILS this test: it never skips.

#[path = "support/notes_service.rs"]
mod notes_service;

use std::{
    io::Read,
    path::PathBuf,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use notes_service::{workspace, Service};

/// The browser run is bounded (the script has its own 120 s watchdog).
const TIMEOUT: Duration = Duration::from_secs(150);

#[test]
fn swagger_ui_authorizes_with_the_password_flow_and_calls_users_me() {
    let root = workspace();
    let script = root.join("tests/browser/swagger.mjs");
    let chromium =
        PathBuf::from(std::env::var_os("CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into()));
    assert!(
        chromium.is_file(),
        "no Chromium at {} (apt-get install chromium, or run scripts/test.sh)",
        chromium.display()
    );
    let pw = root.join("tests/browser/node_modules/playwright-core/package.json");
    assert!(pw.is_file(), "playwright-core is not installed: run `npm ci --prefix tests/browser` (scripts/test.sh does)");

    let svc = Service::start();
    let shot = root.join("target/swagger.png");
    let _ = std::fs::remove_file(&shot);
    let mut child = Command::new("node")
        .arg(&script)
        .arg(svc.base())
        .arg(&shot)
        .env("CHROMIUM", &chromium)
        .current_dir(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not run node (install nodejs): {e}"));
    // Drain both pipes so the script never blocks on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(100));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    let status = status
        .unwrap_or_else(|| panic!("swagger.mjs did not finish within {TIMEOUT:?}\n{out}\n{err}"));
    assert!(
        status.success(),
        "swagger.mjs failed ({status}):\n{out}\n{err}"
    );
    assert!(
        out.contains("ok: GET /users/me → 200"),
        "unexpected output:\n{out}\n{err}"
    );
    assert!(shot.is_file(), "no screenshot at {}", shot.display());
    // The browser's login and call went through the real service.
    let log = svc.log_text();
    assert!(
        log.contains("login_success") && log.contains("alice"),
        "no login in the service log:\n{log}"
    );
}
