//! Architecture rules that the compiler cannot enforce inside one crate: the SIP core in
//! `src/sip` is sans-IO (no tokio, no sockets, no clock), so it stays testable on a virtual
//! clock and usable from any driver. Test-only code may read the clock once, to anchor
//! virtual time.

use std::path::{Path, PathBuf};

/// What `src/sip` must never mention outside test code.
const FORBIDDEN: &[&str] = &[
    "tokio",
    "std::net::UdpSocket",
    "std::net::TcpStream",
    "std::net::TcpListener",
    "UdpSocket",
    "TcpStream",
    "Instant::now()",
    "SystemTime::now()",
    "std::thread::sleep",
    "hyper",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The non-test part of a file: everything before its `#[cfg(test)]` module. Files that
/// are test modules themselves (`tests.rs`) are skipped.
fn production_code(path: &Path) -> Option<String> {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return None;
    }
    let text = std::fs::read_to_string(path).unwrap();
    Some(match text.find("#[cfg(test)]") {
        Some(i) => text[..i].to_string(),
        None => text,
    })
}

#[test]
fn sip_core_is_sans_io() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/sip");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(
        files.len() > 10,
        "expected the sip module tree, found {files:?}"
    );
    let mut violations = Vec::new();
    for f in &files {
        let Some(code) = production_code(f) else {
            continue;
        };
        for (n, line) in code.lines().enumerate() {
            let code_part = line.split("//").next().unwrap_or("");
            for bad in FORBIDDEN {
                if code_part.contains(bad) {
                    violations.push(format!(
                        "{}:{}: `{bad}`: {}",
                        f.display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "src/sip must stay sans-IO:\n{}",
        violations.join("\n")
    );
}

/// The rule must be able to fail: a file using tokio is caught.
#[test]
fn the_rule_catches_a_violation() {
    let dir = std::env::temp_dir().join(format!("sb-arch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bad.rs");
    std::fs::write(
        &f,
        "use tokio::net::UdpSocket;\n#[cfg(test)]\nmod tests {}\n",
    )
    .unwrap();
    let code = production_code(&f).unwrap();
    assert!(FORBIDDEN.iter().any(|b| code.contains(b)));
    std::fs::remove_dir_all(&dir).unwrap();
}
