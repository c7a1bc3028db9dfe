//! Validates an OpenAPI document with an independent, maintained validator:
//! Python's `openapi-spec-validator` (pinned and installed by
//! `scripts/test.sh`). A missing validator fails the test: it never skips.

use std::{io::Write, process::Command};

/// The pinned version, as `scripts/test.sh` installs it.
pub const VERSION: &str = "0.7.2";

const SCRIPT: &str = r#"
import json, sys
from openapi_spec_validator import validate
with open(sys.argv[1]) as f:
    validate(json.load(f))
print("valid")
"#;

/// Panics with the validator's report when `doc` (JSON) is not a valid
/// OpenAPI document.
pub fn assert_valid(what: &str, doc: &str) {
    let dir = std::env::temp_dir().join(format!("poem-secure-oas-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join(format!(
        "{}.json",
        what.replace(|c: char| !c.is_alphanumeric(), "_")
    ));
    std::fs::File::create(&file)
        .and_then(|mut f| f.write_all(doc.as_bytes()))
        .expect("write the document");
    let out = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!("python3 is needed to validate the OpenAPI document ({e}); run scripts/test.sh")
        });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'openapi_spec_validator'"),
        "the OpenAPI validator is missing: `python3 -m pip install openapi-spec-validator=={VERSION}` (scripts/test.sh installs it)"
    );
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "valid",
        "{what}: the OpenAPI document is invalid:\n{stderr}\n(document kept at {})",
        file.display()
    );
}
