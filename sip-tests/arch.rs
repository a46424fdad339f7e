//! Architecture rules that the compiler cannot enforce inside one crate:
//!
//! - the SIP core in `src/sip` is sans-IO (no tokio, no sockets, no clock), so it stays
//!   testable on a virtual clock and usable from any driver;
//! - the top-level modules of `src/` import each other in one direction only, down the
//!   layers of [`ALLOWED`] (the table in `src/lib.rs`'s doc, checked here).
//!
//! Only production code counts: the files the crate's module tree reaches from `src/lib.rs`
//! (and `src/main.rs`) through `mod` declarations that are not `#[cfg(test)]`, with their
//! `#[cfg(test)]` items, comments and string literals blanked out. Test code may reach
//! anywhere and read the clock.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------
// Reading production code

/// One production source file.
#[derive(Debug)]
struct Source {
    path: PathBuf,
    /// Its module path below the crate root: `["registrar", "location", "store"]`; empty
    /// for the crate root itself.
    module: Vec<String>,
    /// The code with comments, string and char literals and `#[cfg(test)]` items blanked
    /// (byte for byte, newlines kept, so offsets and line numbers still match the file).
    code: String,
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// If a raw string (`r"`, `r#"`, `br#"`, ...) opens at `i`: where its body starts, and its
/// number of `#`.
fn raw_string(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let k = i + match b.get(i..i + 2)? {
        [b'r', _] => 1,
        b"br" => 2,
        _ => return None,
    };
    let hashes = b[k..].iter().take_while(|&&c| c == b'#').count();
    (b.get(k + hashes) == Some(&b'"')).then_some((k + hashes + 1, hashes))
}

/// `text` with comments and string/char literals replaced by spaces, byte for byte.
fn blank_comments_and_strings(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to.min(b.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        let prev_ident = i > 0 && is_ident_byte(b[i - 1]);
        if b[i..].starts_with(b"//") {
            let end = b[i..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |n| i + n);
            blank(&mut out, i, end);
            i = end;
        } else if b[i..].starts_with(b"/*") {
            let (mut depth, mut j) = (1, i + 2);
            while j < b.len() && depth > 0 {
                if b[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if b[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if let Some((body, hashes)) = raw_string(b, i).filter(|_| !prev_ident) {
            // A raw string: r"..", r#".."#, br#".."#.
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let end = b[body..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(b.len(), |n| body + n + close.len());
            blank(&mut out, i, end);
            i = end;
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            blank(&mut out, i, j + 1);
            i = j + 1;
        } else if b[i] == b'\'' {
            // A char literal ('a', '\n', '\u{1F600}', 'é') or a lifetime ('a).
            let end = if b.get(i + 1) == Some(&b'\\') {
                // Past the escaped character: '\'' and '\\' end at the next quote.
                b[i + 3..]
                    .iter()
                    .position(|&c| c == b'\'')
                    .map(|n| i + 3 + n + 1)
            } else {
                let ch_len = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                (b.get(i + 1 + ch_len) == Some(&b'\'')).then_some(i + 1 + ch_len + 1)
            };
            match end {
                Some(end) => {
                    blank(&mut out, i, end);
                    i = end;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8(out).expect("only ASCII bytes were written")
}

/// The end (exclusive) of the bracketed group opening at `open`.
fn matching(code: &[u8], open: usize, (left, right): (u8, u8)) -> usize {
    let mut depth = 0;
    for (j, &c) in code.iter().enumerate().skip(open) {
        if c == left {
            depth += 1;
        } else if c == right {
            depth -= 1;
            if depth == 0 {
                return j + 1;
            }
        }
    }
    code.len()
}

fn skip_space(code: &[u8], mut i: usize) -> usize {
    while i < code.len() && code[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Blanks every item marked `#[cfg(test)]` (a `mod tests { .. }`, a `mod tests;`, a test
/// helper fn or impl), attributes included. `code` has comments and strings blanked.
fn blank_test_items(code: &str) -> String {
    const ATTR: &str = "#[cfg(test)]";
    let b = code.as_bytes();
    let mut out = b.to_vec();
    let mut from = 0;
    while let Some(n) = code[from..].find(ATTR) {
        let start = from + n;
        let mut i = skip_space(b, start + ATTR.len());
        // Further attributes of the same item.
        while b.get(i) == Some(&b'#') {
            let open = i + b[i..].iter().position(|&c| c == b'[').unwrap_or(0);
            i = skip_space(b, matching(b, open, (b'[', b']')));
        }
        // The item ends at its `;` or at the brace closing its body, whichever comes first.
        let end = match b[i..].iter().position(|&c| c == b';' || c == b'{') {
            Some(k) if b[i + k] == b';' => i + k + 1,
            Some(k) => matching(b, i + k, (b'{', b'}')),
            None => b.len(),
        };
        for c in &mut out[start..end] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
        from = end;
    }
    String::from_utf8(out).expect("only ASCII bytes were written")
}

/// The `mod NAME;` declarations of blanked `code`: (name, the value of a `#[path]`
/// attribute on it, read from the original `text`).
fn mod_declarations(code: &str, text: &str) -> Vec<(String, Option<String>)> {
    let b = code.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(n) = code[from..].find("mod") {
        let at = from + n;
        from = at + 3;
        if (at > 0 && is_ident_byte(b[at - 1]))
            || !b.get(at + 3).is_some_and(|c| c.is_ascii_whitespace())
        {
            continue;
        }
        let name_start = skip_space(b, at + 3);
        let name_len = b[name_start..]
            .iter()
            .take_while(|&&c| is_ident_byte(c))
            .count();
        let after = skip_space(b, name_start + name_len);
        if name_len == 0 || b.get(after) != Some(&b';') {
            continue; // an inline module (or not a declaration at all)
        }
        // A `#[path = ".."]` among the attribute lines just above it.
        let line_start = code[..at].rfind('\n').map_or(0, |p| p + 1);
        let path = text[..line_start]
            .lines()
            .rev()
            .take_while(|l| l.trim_start().starts_with("#["))
            .find_map(|l| {
                let l = l.trim();
                l.strip_prefix("#[path = \"")?
                    .strip_suffix("\"]")
                    .map(str::to_owned)
            });
        found.push((code[name_start..name_start + name_len].to_owned(), path));
    }
    found
}

/// Reads one file's production code.
fn read_source(path: &Path, module: Vec<String>) -> (Source, String) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let code = if text.contains("#![cfg(test)]") {
        " ".repeat(text.len())
    } else {
        blank_test_items(&blank_comments_and_strings(&text))
    };
    (
        Source {
            path: path.to_owned(),
            module,
            code,
        },
        text,
    )
}

/// Every production file of the crate rooted at `root_file` (a `lib.rs` or `main.rs`),
/// following its `mod` declarations.
fn production_sources(root_file: &Path) -> Vec<Source> {
    let mut out = Vec::new();
    let mut todo = vec![(root_file.to_owned(), Vec::<String>::new())];
    while let Some((path, module)) = todo.pop() {
        let (source, text) = read_source(&path, module);
        let dir = path.parent().unwrap().to_owned();
        // Children of `lib.rs`, `main.rs` and `mod.rs` live beside them; those of `foo.rs`
        // in `foo/`.
        let owns_dir = ["lib.rs", "main.rs", "mod.rs"]
            .iter()
            .any(|n| path.file_name().is_some_and(|f| f == *n));
        let child_dir = if owns_dir {
            dir.clone()
        } else {
            dir.join(path.file_stem().unwrap())
        };
        for (name, attr_path) in mod_declarations(&source.code, &text) {
            let file = match attr_path {
                Some(p) => dir.join(p),
                None => {
                    let flat = child_dir.join(format!("{name}.rs"));
                    if flat.exists() {
                        flat
                    } else {
                        child_dir.join(&name).join("mod.rs")
                    }
                }
            };
            assert!(
                file.exists(),
                "{}: mod {name}: no {}",
                path.display(),
                file.display()
            );
            let mut child = source.module.clone();
            child.push(name);
            todo.push((file, child));
        }
        out.push(source);
    }
    out
}

// ---------------------------------------------------------------------------------------
// The SIP core is sans-IO

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

/// `file:line: what` for every forbidden name in production code under module `top`.
fn sans_io_violations(sources: &[Source], top: &str) -> Vec<String> {
    let mut violations = Vec::new();
    for s in sources
        .iter()
        .filter(|s| s.module.first().is_some_and(|m| m == top))
    {
        for (n, line) in s.code.lines().enumerate() {
            for bad in FORBIDDEN.iter().filter(|bad| line.contains(*bad)) {
                violations.push(format!("{}:{}: `{bad}`", s.path.display(), n + 1));
            }
        }
    }
    violations
}

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn sip_core_is_sans_io() {
    let sources = production_sources(&src().join("lib.rs"));
    let sip_files = sources
        .iter()
        .filter(|s| s.module.first().is_some_and(|m| m == "sip"));
    assert!(sip_files.count() > 10, "expected the sip module tree");
    let violations = sans_io_violations(&sources, "sip");
    assert!(
        violations.is_empty(),
        "src/sip must stay sans-IO:\n{}",
        violations.join("\n")
    );
}

/// What the call core (`src/call/core`) may name of the crate: the SIP core, the media
/// plane's plain data (ids, stream parameters, G.711 laws, the DTMF-relay body parser), a
/// client's AOR key, random ids and percent-decoding. Not the media engine, sockets, webhooks, config or
/// the wall clock: the driver (`call/driver.rs`) does all of that.
const CALL_CORE_MAY_NAME: &[&str] = &[
    "crate::sip::",
    "crate::media::EndpointId",
    "crate::media::StreamParams",
    "crate::media::SecureParams",
    "crate::media::PayloadTypes",
    "crate::media::g711::",
    "crate::media::dtmf::parse_dtmf_relay",
    "crate::registrar::location::AorKey",
    "crate::ids::",
    "crate::percent::",
];

/// The `crate::…` paths in `code` that `allowed` does not cover, and any `super::super`
/// (the core reaching back into `call/`).
fn foreign_paths(code: &str, allowed: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let path = &rest[..end];
        if rest[end..].starts_with('{') {
            // A group: every name in it must be allowed on its own.
            let group = &rest[end + 1..];
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for name in group.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let full = format!("{path}{name}");
                if !allowed.iter().any(|a| full.starts_with(a)) {
                    out.push(full);
                }
            }
            continue;
        }
        if !allowed.iter().any(|a| path.starts_with(a)) {
            out.push(path.to_string());
        }
    }
    if code.contains("super::super") {
        out.push("super::super".to_string());
    }
    out
}

#[test]
fn call_core_is_sans_io_and_names_only_data() {
    let sources = production_sources(&src().join("lib.rs"));
    let core: Vec<&Source> = sources
        .iter()
        .filter(|s| s.module.len() >= 2 && s.module[0] == "call" && s.module[1] == "core")
        .collect();
    assert!(
        core.len() >= 5,
        "expected the call core's files, found {}",
        core.len()
    );
    let mut violations = Vec::new();
    for s in &core {
        for (n, line) in s.code.lines().enumerate() {
            for bad in FORBIDDEN.iter().filter(|bad| line.contains(*bad)) {
                violations.push(format!("{}:{}: `{bad}`", s.path.display(), n + 1));
            }
            for path in foreign_paths(line, CALL_CORE_MAY_NAME) {
                violations.push(format!("{}:{}: `{path}`", s.path.display(), n + 1));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "src/call/core must stay sans-IO and name only data:\n{}",
        violations.join("\n")
    );
}

/// The call-core rule can fail: the engine, webhooks, the clock and the driver are caught.
#[test]
fn the_call_core_rule_catches_a_violation() {
    let ok = "use crate::sip::Method;\nuse crate::media::{EndpointId, StreamParams};\n";
    assert!(foreign_paths(ok, CALL_CORE_MAY_NAME).is_empty());
    for bad in [
        "use crate::media::MediaEngine;",
        "use crate::media::{EndpointId, MediaEngine};",
        "crate::webhook::WebhookClient",
        "crate::time::unix_ms()",
        "use super::super::driver::Call;",
        "crate::transport::sender::SipSender",
    ] {
        assert!(
            !foreign_paths(bad, CALL_CORE_MAY_NAME).is_empty(),
            "{bad} not caught"
        );
    }
    assert!(FORBIDDEN.iter().any(|f| "tokio::spawn(x)".contains(f)));
}

// ---------------------------------------------------------------------------------------
// Layers

/// Leaf utilities: they import nothing of ours, and every module may import them.
const LEAVES: &[&str] = &["ids", "percent", "time"];

/// What each top-level module of `src/` may import besides the [`LEAVES`], top layer first
/// (`main` is `src/main.rs`, the binary, which imports through `switchboard::`). Every
/// module of `src/lib.rs` has a row, and the table has no cycle.
const ALLOWED: &[(&str, &[&str])] = &[
    ("main", &["server", "registrar", "config"]),
    (
        "server",
        &[
            "shard",
            "api",
            "call",
            "webhook",
            "registrar",
            "transport",
            "media",
            "metrics",
            "instructions",
            "config",
            "sip",
        ],
    ),
    // A shard routes to calls and the registrar; it never serves HTTP.
    (
        "shard",
        &["call", "registrar", "transport", "metrics", "sip"],
    ),
    (
        "api",
        &[
            "call",
            "registrar",
            "media",
            "instructions",
            "metrics",
            "config",
            "sip",
        ],
    ),
    // `transport` for SipSender: call tasks send on the shards' sockets.
    (
        "call",
        &[
            "webhook",
            "registrar",
            "media",
            "transport",
            "instructions",
            "config",
            "sip",
        ],
    ),
    // `registrar` for presence callbacks.
    ("webhook", &["registrar", "instructions", "config"]),
    // `metrics` for the REGISTER outcome labels.
    ("registrar", &["metrics", "config", "sip"]),
    // `metrics` to count refused connections.
    ("transport", &["metrics", "sip"]),
    // `config` for PortRange.
    ("media", &["config"]),
    ("metrics", &["sip"]),
    ("instructions", &[]),
    ("config", &[]),
    ("sip", &[]),
];

/// The `pub mod` (and `mod`) names of a `lib.rs`.
fn top_modules(lib: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(lib).unwrap();
    let code = blank_test_items(&blank_comments_and_strings(&text));
    mod_declarations(&code, &text)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// A path's first segments after `at` (just past `crate::`, `switchboard::` or the last
/// `super::`): one name, or each item's first name in a `{ .. }` group.
fn path_heads(code: &[u8], at: usize) -> Vec<String> {
    let i = skip_space(code, at);
    if code.get(i) == Some(&b'{') {
        let end = matching(code, i, (b'{', b'}'));
        let mut heads = Vec::new();
        let (mut depth, mut expect) = (0, true);
        for j in i..end {
            match code[j] {
                b'{' => {
                    depth += 1;
                    expect = depth == 1;
                }
                b'}' => depth -= 1,
                b',' if depth == 1 => expect = true,
                c if expect && depth == 1 && is_ident_byte(c) => {
                    let len = code[j..].iter().take_while(|&&c| is_ident_byte(c)).count();
                    heads.push(String::from_utf8_lossy(&code[j..j + len]).into_owned());
                    expect = false;
                }
                _ => {}
            }
        }
        heads
    } else {
        let len = code[i..].iter().take_while(|&&c| is_ident_byte(c)).count();
        vec![String::from_utf8_lossy(&code[i..i + len]).into_owned()]
    }
}

/// Where a path segment `word` followed by `::` starts in `code`: (offset just past its
/// `::`, the offset of `word`).
fn segments<'a>(code: &'a str, word: &'a str) -> impl Iterator<Item = (usize, usize)> + 'a {
    let b = code.as_bytes();
    code.match_indices(word).filter_map(move |(at, _)| {
        if at > 0 && is_ident_byte(b[at - 1]) {
            return None;
        }
        let i = skip_space(b, at + word.len());
        b[i..].starts_with(b"::").then_some((i + 2, at))
    })
}

/// If a `super::` segment starts at `at` (after spaces), the offset just past its `::`.
fn super_segment(code: &[u8], at: usize) -> Option<usize> {
    let i = skip_space(code, at);
    if !code[i..].starts_with(b"super") || code.get(i + 5).is_some_and(|&c| is_ident_byte(c)) {
        return None;
    }
    let j = skip_space(code, i + 5);
    code[j..].starts_with(b"::").then_some(j + 2)
}

/// The top-level modules a source names, each with the line: `crate::x`,
/// `crate::{x, y::z}`, `super::super::x` climbing to the crate root, and in the binary
/// `switchboard::x`.
fn imports(source: &Source, binary: bool) -> Vec<(String, usize)> {
    let code = source.code.as_str();
    let b = code.as_bytes();
    let line = |at: usize| code[..at].matches('\n').count() + 1;
    let mut found = Vec::new();
    let root = if binary { "switchboard" } else { "crate" };
    for (after, at) in segments(code, root) {
        found.extend(path_heads(b, after).into_iter().map(|h| (h, line(at))));
    }
    // `super::` chains: only the first `super` of a chain, and only if it climbs out of
    // the top-level module.
    for (mut after, at) in segments(code, "super") {
        let starts_chain = !code[..at].trim_end().ends_with("::");
        if !starts_chain {
            continue;
        }
        let mut depth = 1;
        while let Some(next) = super_segment(b, after) {
            after = next;
            depth += 1;
        }
        if depth >= source.module.len() {
            found.extend(path_heads(b, after).into_iter().map(|h| (h, line(at))));
        }
    }
    found
}

/// One module naming another: `from -> to` at `file:line`.
#[derive(Debug)]
struct Edge {
    from: String,
    to: String,
    at: String,
}

/// Every place a top-level module names another (the binary counts as `main`).
fn edges(lib: &Path, main: Option<&Path>) -> Vec<Edge> {
    let modules: BTreeSet<String> = top_modules(lib).into_iter().collect();
    let mut files: Vec<(Source, bool)> = production_sources(lib)
        .into_iter()
        .map(|s| (s, false))
        .collect();
    if let Some(main) = main {
        files.extend(production_sources(main).into_iter().map(|s| (s, true)));
    }
    let mut found = Vec::new();
    for (source, binary) in &files {
        let from = if *binary {
            "main"
        } else {
            match source.module.first() {
                Some(m) => m.as_str(),
                None => continue, // lib.rs itself only declares the modules
            }
        };
        for (to, line) in imports(source, *binary) {
            if to != from && modules.contains(&to) {
                found.push(Edge {
                    from: from.to_owned(),
                    to,
                    at: format!("{}:{line}", source.path.display()),
                });
            }
        }
    }
    found
}

/// Every edge the table does not allow: `file:line: from -> to`.
fn layer_violations(edges: &[Edge], allowed: &[(&str, &[&str])]) -> Vec<String> {
    let may = |from: &str, to: &str| {
        LEAVES.contains(&to)
            || allowed
                .iter()
                .any(|(m, deps)| *m == from && deps.contains(&to))
    };
    edges
        .iter()
        .filter(|e| !may(&e.from, &e.to))
        .map(|e| format!("{}: {} -> {}", e.at, e.from, e.to))
        .collect()
}

/// A cycle in a dependency table, if there is one (as `a -> b -> a`).
fn cycle(table: &[(&str, &[&str])]) -> Option<String> {
    fn visit<'a>(
        node: &'a str,
        table: &BTreeMap<&'a str, &'a [&'a str]>,
        state: &mut BTreeMap<&'a str, bool>,
        stack: &mut Vec<&'a str>,
    ) -> Option<String> {
        match state.get(node) {
            Some(true) => return None,
            Some(false) => {
                let from = stack.iter().position(|n| *n == node).unwrap();
                let mut path = stack[from..].to_vec();
                path.push(node);
                return Some(path.join(" -> "));
            }
            None => {}
        }
        state.insert(node, false);
        stack.push(node);
        for dep in table.get(node).copied().unwrap_or_default() {
            if let Some(c) = visit(dep, table, state, stack) {
                return Some(c);
            }
        }
        stack.pop();
        state.insert(node, true);
        None
    }
    let map: BTreeMap<&str, &[&str]> = table.iter().copied().collect();
    let mut state = BTreeMap::new();
    table
        .iter()
        .find_map(|(m, _)| visit(m, &map, &mut state, &mut Vec::new()))
}

#[test]
fn imports_follow_the_layers() {
    let edges = edges(&src().join("lib.rs"), Some(&src().join("main.rs")));
    // The scan sees imports at all (a broken scanner would pass everything).
    for (from, to) in [("main", "server"), ("shard", "call"), ("call", "sip")] {
        assert!(
            edges.iter().any(|e| e.from == from && e.to == to),
            "{from} -> {to} not found: {edges:?}"
        );
    }
    let violations = layer_violations(&edges, ALLOWED);
    assert!(
        violations.is_empty(),
        "imports against the layers (sip-tests/arch.rs ALLOWED):\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_layer_table_is_acyclic_and_covers_every_module() {
    assert_eq!(cycle(ALLOWED), None);
    let modules: BTreeSet<String> = top_modules(&src().join("lib.rs")).into_iter().collect();
    let rows: BTreeSet<String> = ALLOWED.iter().map(|(m, _)| m.to_string()).collect();
    let leaves: BTreeSet<String> = LEAVES.iter().map(|m| m.to_string()).collect();
    let expected: BTreeSet<String> = modules.iter().cloned().chain(["main".into()]).collect();
    let covered: BTreeSet<String> = rows.union(&leaves).cloned().collect();
    assert_eq!(
        covered, expected,
        "one row (or leaf entry) per module of lib.rs"
    );
    assert!(
        rows.is_disjoint(&leaves),
        "a leaf has no row: it imports nothing"
    );
    for (m, deps) in ALLOWED {
        for d in *deps {
            assert!(
                rows.contains(*d) && *d != "main",
                "{m} -> {d}: not a module (leaves need no entry)"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// The rules can fail

/// A scratch crate under the temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str, files: &[(&str, &str)]) -> Scratch {
        let dir = std::env::temp_dir().join(format!("sb-arch-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, text) in files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A file using tokio in the SIP core is caught; the same in its test module is not.
#[test]
fn the_rule_catches_a_violation() {
    let s = Scratch::new(
        "sansio",
        &[
            ("lib.rs", "pub mod sip;\n"),
            ("sip/mod.rs", "mod io;\n#[cfg(test)]\nmod tests;\n"),
            (
                "sip/io.rs",
                "use tokio::net::UdpSocket;\n#[cfg(test)]\n\
                 mod tests { use std::time::Instant; fn t() { Instant::now(); } }\n",
            ),
            ("sip/tests.rs", "fn f() { std::thread::sleep(d) }\n"),
        ],
    );
    let sources = production_sources(&s.0.join("lib.rs"));
    let v = sans_io_violations(&sources, "sip");
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(v.iter().all(|l| l.contains("io.rs:1:")), "{v:?}");
}

/// Each way of naming another module is found; test code, comments and strings are not.
#[test]
fn the_layer_rule_catches_a_violation() {
    let s = Scratch::new(
        "layers",
        &[
            ("lib.rs", "pub mod ids;\npub mod sip;\npub mod call;\n"),
            ("ids.rs", "pub fn tag() {}\n"),
            ("call.rs", "use crate::sip::Peer;\n"),
            (
                "sip/mod.rs",
                "pub mod a; pub mod b;\n#[cfg(test)]\n#[path = \"a_tests.rs\"]\nmod a_tests;\n\
                 // crate::call in a comment\n\
                 const S: &str = \"crate::call\";\n\
                 #[cfg(test)]\nfn helper() { crate::call::f(); }\n\
                 use crate::{ids, call::Thing};\n",
            ),
            (
                "sip/a.rs",
                "pub struct Peer;\nfn g() -> char { let _ = '{'; super::super::call::h() }\n\
                 fn k() { let _ = crate::ids::tag(); let _ = super::Peer; }\n",
            ),
            (
                "sip/b.rs",
                "fn l<'a>(x: &'a str) -> &'a str { let _ = r#\"crate::call \"q\"\"#; x }\n\
                 fn m() -> u8 { let _ = b'\\''; super::super::call::h() }\n",
            ),
            ("sip/a_tests.rs", "use crate::call::Thing;\n"),
        ],
    );
    let edges = edges(&s.0.join("lib.rs"), None);
    let table: &[(&str, &[&str])] = &[("call", &["sip"]), ("sip", &[])];
    let mut v = layer_violations(&edges, table);
    v.sort();
    let v: Vec<&str> = v.iter().map(|l| l.rsplit('/').next().unwrap()).collect();
    assert_eq!(
        v,
        [
            "a.rs:2: sip -> call",
            "b.rs:2: sip -> call",
            "mod.rs:9: sip -> call"
        ]
    );
    // Allowed, the same imports pass (the checker does not judge the table's shape).
    let table: &[(&str, &[&str])] = &[("call", &["sip"]), ("sip", &["call"])];
    assert!(layer_violations(&edges, table).is_empty());
    assert_eq!(
        cycle(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"])]).as_deref(),
        Some("a -> b -> c -> a")
    );
    assert_eq!(cycle(&[("a", &["b"]), ("b", &[])]), None);
}
