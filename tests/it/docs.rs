//! The documentation's own checks (issue 22): every relative link in
//! `README.md` and `docs/**/*.md` leads to a file, and to a heading of it
//! when the link names one; `docs/README.md` links every page; and every
//! key of `config/pinless.toml`, live or commented out, is named in the
//! configuration reference under its section's heading.
//!
//! Standard library only. The checkers are functions of text (`links`,
//! `headings`, `slug`, `check_links`, `config_keys`, `missing_keys`), so
//! the self-tests at the end feed them small documents in memory and a
//! check that finds nothing cannot pass by accident; the `#[test]`s in
//! between only read the real files.

use std::collections::{BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

// ---------------------------------------------------------------------------
// Markdown: links and headings

/// A link written in a Markdown file: the line it is on (from 1) and its
/// target as written (`path`, `path#anchor` or `#anchor`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Link {
    line: usize,
    target: String,
}

/// Whether a line opens or closes a fenced code block: returns the fence
/// (its character and length) when the line, less its indentation, starts
/// with three or more backticks or tildes.
fn fence(line: &str) -> Option<(char, usize)> {
    let t = line.trim_start();
    let c = t.chars().next()?;
    if c != '`' && c != '~' {
        return None;
    }
    let n = t.chars().take_while(|&x| x == c).count();
    (n >= 3).then_some((c, n))
}

/// The lines of `text` outside fenced code blocks, with their numbers
/// (from 1). Fence lines themselves are left out.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut open: Option<(char, usize)> = None;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match (open, fence(line)) {
            (None, Some(f)) => open = Some(f),
            // A closing fence: the same character, at least as long, and
            // nothing after it.
            (Some((c, n)), Some((c2, n2)))
                if c == c2 && n2 >= n && line.trim().chars().all(|x| x == c) =>
            {
                open = None
            }
            (None, None) => out.push((i + 1, line)),
            _ => {}
        }
    }
    out
}

/// `text` with the contents of its code spans (`` `…` ``, ```` ``…`` ````)
/// blanked out, newlines kept, so that what looks like a link inside code
/// is not one. A backtick run with no closing run of the same length is
/// literal, as in CommonMark.
fn blank_code_spans(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let run = |at: usize| chars[at..].iter().take_while(|&&c| c == '`').count();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let n = run(i);
        // Look for the closing run of exactly n backticks.
        let mut j = i + n;
        let mut close = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let m = run(j);
                if m == n {
                    close = Some(j);
                    break;
                }
                j += m;
            } else {
                j += 1;
            }
        }
        match close {
            Some(j) => {
                for &c in &chars[i..j + n] {
                    out.push(if c == '\n' { '\n' } else { ' ' });
                }
                i = j + n;
            }
            None => {
                for _ in 0..n {
                    out.push('`');
                }
                i += n;
            }
        }
    }
    out
}

/// The relative links of a Markdown text: inline links and images
/// (`[text](target)`, `![alt](target "title")`) and reference definitions
/// (`[name]: target`). Fenced code blocks and code spans are skipped, and
/// so are `http://`, `https://` and `mailto:` targets.
fn links(text: &str) -> Vec<Link> {
    let mut found = Vec::new();
    // Code spans may run over a line break inside a paragraph, so they are
    // blanked a paragraph (a run of non-blank prose lines) at a time.
    let lines = prose_lines(text);
    let mut k = 0;
    while k < lines.len() {
        let first = lines[k].0;
        let mut end = k;
        while end < lines.len()
            && !lines[end].1.trim().is_empty()
            && lines[end].0 == first + (end - k)
        {
            end += 1;
        }
        if end == k {
            k += 1;
            continue;
        }
        let paragraph: Vec<&str> = lines[k..end].iter().map(|(_, l)| *l).collect();
        let blanked = blank_code_spans(&paragraph.join("\n"));
        for (offset, line) in blanked.lines().enumerate() {
            for target in line_targets(line) {
                if !is_external(&target) {
                    found.push(Link {
                        line: first + offset,
                        target,
                    });
                }
            }
        }
        k = end;
    }
    found
}

/// The link targets written on one line (code already blanked).
fn line_targets(line: &str) -> Vec<String> {
    let mut targets = Vec::new();
    // A reference definition: `[name]: target`.
    let t = line.trim_start();
    if t.starts_with('[')
        && !t.starts_with("[[")
        && let Some(close) = t.find("]:")
        && let Some(target) = t[close + 2..].split_whitespace().next()
    {
        targets.push(unangle(target).to_string());
    }
    // Inline links and images: `](` up to the matching `)`.
    let bytes = line.as_bytes();
    let mut i = 0;
    while let Some(at) = line[i..].find("](") {
        let start = i + at + 2;
        let mut depth = 0usize;
        let mut end = None;
        for (j, &b) in bytes.iter().enumerate().skip(start) {
            match b {
                b'(' => depth += 1,
                b')' if depth == 0 => {
                    end = Some(j);
                    break;
                }
                b')' => depth -= 1,
                _ => {}
            }
        }
        let Some(end) = end else { break };
        let inside = line[start..end].trim();
        // A title after the target: `(path "title")`.
        let target = if let Some(angled) = inside.strip_prefix('<') {
            angled.split('>').next().unwrap_or("")
        } else {
            inside.split_whitespace().next().unwrap_or("")
        };
        if !target.is_empty() {
            targets.push(target.to_string());
        }
        i = end + 1;
    }
    targets
}

fn unangle(target: &str) -> &str {
    target
        .strip_prefix('<')
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or(target)
}

fn is_external(target: &str) -> bool {
    ["http://", "https://", "mailto:"]
        .iter()
        .any(|scheme| target.to_ascii_lowercase().starts_with(scheme))
}

/// A heading's anchor as GitHub makes it: the heading's text, lowercased;
/// every character but letters, digits, spaces, hyphens and underscores
/// dropped; each space made a hyphen (so `a / b` gives `a--b`).
/// Formatting is dropped with the punctuation, and a link in a heading
/// counts by its text.
fn slug(heading: &str) -> String {
    let text = link_texts(heading);
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// `[text](target)` reduced to `text`.
fn link_texts(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find("](") {
        let Some(close) = rest[at..].find(')') else {
            break;
        };
        out.push_str(&rest[..at]);
        rest = &rest[at + close + 1..];
    }
    out.push_str(rest);
    out
}

/// The headings of a Markdown text (ATX headings, `#` to `######`, outside
/// fenced code): (line, level, text).
fn heading_lines(text: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    for (n, line) in prose_lines(text) {
        let indent = line.len() - line.trim_start_matches(' ').len();
        if indent > 3 {
            continue;
        }
        let t = &line[indent..];
        let level = t.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&level) {
            continue;
        }
        let rest = &t[level..];
        if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
            continue;
        }
        // An optional closing sequence of #s.
        let body = rest.trim();
        let body = match body.trim_end_matches('#') {
            b if b.is_empty() || b.ends_with(' ') => b.trim_end(),
            _ => body,
        };
        out.push((n, level, body.to_string()));
    }
    out
}

/// The anchors of a Markdown text's headings; a repeated heading gets
/// `-1`, `-2`, … as on GitHub.
fn headings(text: &str) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut anchors = Vec::new();
    for (_, _, body) in heading_lines(text) {
        let base = slug(&body);
        let anchor = match seen.get(&base) {
            None => base.clone(),
            Some(n) => format!("{base}-{n}"),
        };
        *seen.entry(base).or_insert(0) += 1;
        anchors.push(anchor);
    }
    anchors
}

/// What a link target can be.
enum Found {
    Missing,
    /// A file other than Markdown, or a directory.
    Other,
    /// A Markdown file, with its text.
    Markdown(String),
}

/// `path` with `.` and `..` resolved without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Checks the links of the Markdown file `file` (text `text`) under the
/// repository root `root`; `lookup` says what a path is. Returns how many
/// links were checked and one message per broken one.
fn check_links(
    root: &Path,
    file: &Path,
    text: &str,
    lookup: &dyn Fn(&Path) -> Found,
) -> (usize, Vec<String>) {
    let shown = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
    let mut problems = Vec::new();
    let all = links(text);
    for link in &all {
        let at = format!("{}:{}: link `{}`", shown(file), link.line, link.target);
        let (path, anchor) = match link.target.split_once('#') {
            Some((p, a)) => (p, Some(a)),
            None => (link.target.as_str(), None),
        };
        let (target, found) = if path.is_empty() {
            (file.to_path_buf(), Found::Markdown(text.to_string()))
        } else {
            let dir = file.parent().unwrap_or(root);
            let target = normalize(&dir.join(path));
            if !target.starts_with(root) {
                problems.push(format!("{at}: leads out of the repository"));
                continue;
            }
            let found = lookup(&target);
            (target, found)
        };
        match (found, anchor) {
            (Found::Missing, _) => {
                problems.push(format!("{at}: there is no file {}", shown(&target)))
            }
            (Found::Markdown(md), Some(anchor)) if !headings(&md).iter().any(|h| h == anchor) => {
                problems.push(format!(
                    "{at}: {} has no heading whose anchor is `#{anchor}`",
                    shown(&target)
                ));
            }
            _ => {}
        }
    }
    (all.len(), problems)
}

// ---------------------------------------------------------------------------
// config/pinless.toml and the configuration reference

/// Whether `s` is a TOML bare key that names a setting.
fn is_key(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `[name]` or `[[name]]` (a dotted name), as a section header.
fn header(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("[[").and_then(|s| s.strip_suffix("]]"));
    let inner = inner.or_else(|| s.strip_prefix('[').and_then(|s| s.strip_suffix(']')))?;
    let inner = inner.trim();
    (!inner.is_empty() && inner.split('.').all(is_key)).then_some(inner)
}

/// Whether `v` reads as one whole TOML value (with perhaps a comment
/// after it): a string closed before anything but a comment, an array or
/// inline table, a boolean, or a number. Prose that happens to follow an
/// `=` (`text="shutting down") and exit.`) does not.
fn is_value(v: &str) -> bool {
    let rest = if let Some(body) = v.strip_prefix('"') {
        let mut escaped = false;
        let close = body.char_indices().find(|&(_, c)| {
            let end = c == '"' && !escaped;
            escaped = c == '\\' && !escaped;
            end
        });
        match close {
            Some((i, _)) => &body[i + 1..],
            None => return false,
        }
    } else if v.starts_with('[') || v.starts_with('{') {
        return true;
    } else {
        let token = v.split_whitespace().next().unwrap_or("");
        let word = token == "true"
            || token == "false"
            || token.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+');
        if !word {
            return false;
        }
        &v[token.len()..]
    };
    let rest = rest.trim();
    rest.is_empty() || rest.starts_with('#')
}

/// The keys of a TOML config file as (section, key), in order, each once:
/// live `key = value` lines, and comment lines that read `# key = value`
/// (one `#`, then a bare key, ` = ` and a whole value), under the last
/// `[section]` or `[[section]]` header, live or commented out ("" before
/// any). Comment prose (`# 0 = off`, `# … open = true …`,
/// `# text="shutting down") and exit.`) is not taken for a key.
fn config_keys(toml: &str) -> Vec<(String, String)> {
    let mut section = String::new();
    let mut keys: Vec<(String, String)> = Vec::new();
    for line in toml.lines() {
        let live = line.trim();
        let commented = live.strip_prefix('#').map(str::trim);
        let t = commented.unwrap_or(live);
        if let Some(name) = header(t) {
            section = name.to_string();
            continue;
        }
        let pair = match commented {
            None => live.split_once('='),
            Some(c) => c.split_once(" = ").filter(|(_, v)| is_value(v.trim())),
        };
        let Some((key, value)) = pair else { continue };
        let (key, value) = (key.trim(), value.trim());
        if !is_key(key) || value.is_empty() || value.starts_with('=') {
            continue;
        }
        let pair = (section.clone(), key.to_string());
        if !keys.contains(&pair) {
            keys.push(pair);
        }
    }
    keys
}

/// The keys of `keys` that the configuration reference `reference` does
/// not name as `` `key` `` under a heading naming their section (`[node]`,
/// `[[dialin]]`, `[dialin.header_policy]`; the heading's part runs to the
/// next heading of the same or a higher level). Keys outside any section
/// may be anywhere. One message per key, with its section.
fn missing_keys(reference: &str, keys: &[(String, String)]) -> Vec<String> {
    let lines: Vec<&str> = reference.lines().collect();
    let heads = heading_lines(reference);
    // The text under every heading that names `section`.
    let part_of = |section: &str| -> Option<String> {
        let table = format!("[{section}]");
        let mut text = String::new();
        let mut any = false;
        for (i, (line, level, body)) in heads.iter().enumerate() {
            if !body.replace('`', "").contains(&table) {
                continue;
            }
            any = true;
            let end = heads[i + 1..]
                .iter()
                .find(|(_, l, _)| l <= level)
                .map_or(lines.len(), |(n, _, _)| n - 1);
            for l in &lines[line - 1..end] {
                text.push_str(l);
                text.push('\n');
            }
        }
        any.then_some(text)
    };
    let mut missing = Vec::new();
    for (section, key) in keys {
        let named = format!("`{key}`");
        let ok = if section.is_empty() {
            reference.contains(&named)
        } else {
            match part_of(section) {
                Some(part) => part.contains(&named),
                None => {
                    missing.push(format!("[{section}] {key}: no heading names `[{section}]`"));
                    continue;
                }
            }
        };
        if !ok {
            let place = if section.is_empty() {
                "outside any section".to_string()
            } else {
                format!("[{section}]")
            };
            missing.push(format!("{place} {key}"));
        }
    }
    missing
}

// ---------------------------------------------------------------------------
// The real files

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// README.md and every Markdown file under docs/.
fn markdown_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut files = vec![root().join("README.md")];
    walk(&root().join("docs"), &mut files);
    files.sort();
    files
}

fn on_disk(path: &Path) -> Found {
    if path.extension().is_some_and(|e| e == "md") && path.is_file() {
        Found::Markdown(read(path))
    } else if path.exists() {
        Found::Other
    } else {
        Found::Missing
    }
}

#[test]
fn every_relative_link_leads_to_a_file_and_heading() {
    let files = markdown_files();
    assert!(
        files.len() >= 8,
        "README.md and the pages under docs/ should be found; found {files:?}"
    );
    let (mut checked, mut problems) = (0, Vec::new());
    for file in &files {
        let (n, mut p) = check_links(&root(), file, &read(file), &on_disk);
        checked += n;
        problems.append(&mut p);
    }
    assert!(
        problems.is_empty(),
        "{} broken link(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
    // The README's feature list and the book's cross-references alone are
    // well over this; fewer means the scan stopped seeing links.
    assert!(checked >= 100, "only {checked} relative links found");
}

#[test]
fn the_docs_index_links_every_page() {
    let index = root().join("docs/README.md");
    let linked: BTreeSet<PathBuf> = links(&read(&index))
        .into_iter()
        .map(|l| l.target.split('#').next().unwrap_or("").to_string())
        .filter(|p| !p.is_empty())
        .map(|p| normalize(&root().join("docs").join(p)))
        .collect();
    let unlisted: Vec<String> = markdown_files()
        .into_iter()
        .filter(|f| f.starts_with(root().join("docs")) && *f != index)
        .filter(|f| !linked.contains(f))
        .map(|f| f.strip_prefix(root()).unwrap_or(&f).display().to_string())
        .collect();
    assert!(
        unlisted.is_empty(),
        "docs/README.md does not link: {}",
        unlisted.join(", ")
    );
}

#[test]
fn every_config_key_is_in_the_reference() {
    let keys = config_keys(&read(&root().join("config/pinless.toml")));
    // config/pinless.toml shows every key; far fewer means the parser
    // stopped seeing them.
    assert!(keys.len() >= 40, "only {} keys found: {keys:?}", keys.len());
    let missing = missing_keys(&read(&root().join("docs/configuration.md")), &keys);
    assert!(
        missing.is_empty(),
        "docs/configuration.md does not name {} key(s) of config/pinless.toml \
         (as `key`, under a heading naming its section):\n{}",
        missing.len(),
        missing.join("\n")
    );
}

// ---------------------------------------------------------------------------
// Self-tests of the checkers, on documents in memory

#[test]
fn slugs_follow_github() {
    assert_eq!(slug("Secure media (SRTP)"), "secure-media-srtp");
    assert_eq!(slug("`pinless probe`: x"), "pinless-probe-x");
    assert_eq!(
        slug("Behind NAT / in the cloud"),
        "behind-nat--in-the-cloud"
    );
    assert_eq!(slug("`[dialin.header_policy]`"), "dialinheader_policy");
    assert_eq!(
        slug("Keys the caller presses (DTMF)"),
        "keys-the-caller-presses-dtmf"
    );
    assert_eq!(slug("See [the API](api.md) now"), "see-the-api-now");
    assert_eq!(slug("Ünïcode µ-law 8 kHz"), "ünïcode-µ-law-8-khz");
    let doc = "# Top\n## Notes\n```\n# not a heading\n```\n## Notes\n### Notes ##\n";
    assert_eq!(headings(doc), ["top", "notes", "notes-1", "notes-2"]);
}

#[test]
fn links_skip_code_and_external_targets() {
    let doc = "\
A [page](a.md) and an ![image](img/x.png \"title\").
Code `[not](a link)` and ``[nor](this)``, a span `over
a break [no](link)` ends; [web](https://example.com), [mail](mailto:a@b).
```sh
[inside](fence.md)
```
[ref]: refs/b.md
";
    let got: Vec<(usize, String)> = links(doc).into_iter().map(|l| (l.line, l.target)).collect();
    assert_eq!(
        got,
        [
            (1, "a.md".to_string()),
            (1, "img/x.png".to_string()),
            (7, "refs/b.md".to_string())
        ]
    );
}

#[test]
fn broken_links_and_anchors_are_reported() {
    let root = Path::new("/repo");
    let guide = "# Guide\n\n## Secure media (SRTP)\n";
    let fs = |p: &Path| match p.to_str() {
        Some("/repo/docs/guide.md") => Found::Markdown(guide.to_string()),
        Some("/repo/config/pinless.toml") => Found::Other,
        _ => Found::Missing,
    };
    let doc = "\
# Index

## Start here

Good: [guide](guide.md), [SRTP](guide.md#secure-media-srtp), [up](#start-here),
[config](../config/pinless.toml).
Broken: [gone](missing.md) and [anchor](guide.md#no-such-heading).
Also [self](#nowhere) and [out](../../etc/passwd).
";
    let (n, problems) = check_links(root, Path::new("/repo/docs/index.md"), doc, &fs);
    assert_eq!(n, 8);
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(problems[0].contains("docs/index.md:7: link `missing.md`"));
    assert!(problems[0].contains("no file docs/missing.md"));
    assert!(problems[1].contains("docs/index.md:7: link `guide.md#no-such-heading`"));
    assert!(problems[1].contains("`#no-such-heading`"));
    assert!(problems[2].contains(":8: link `#nowhere`"));
    assert!(problems[3].contains("out of the repository"));
}

#[test]
fn config_keys_live_and_commented_out() {
    let toml = "\
# A prose comment: PINLESS_API__LISTEN=127.0.0.1:9090 and 0 = off.
top=1
[node]
# relay again. \"drain\": stop, then hang up the rest (Reason: SIP;cause=503;
# text=\"shutting down\") and exit. Also: a = b, and
# shutdown = \"resume\" (the default) is prose too.
# Unset: generated once.
# call_domain = \"my-node\"
state_dir = \"./state\"
# anyone, and must say so with open = true (else it refuses).
[[dialin]]
name_prefix = \"support\"
# credentials = [{ username = \"joe\", password = \"…\" }]
# A key: { \"0\" = \"sip:op@example.com\" }.
[dialin.header_policy]
allow = []
[[dialin]]
name_prefix = \"sales\"
";
    let keys = config_keys(toml);
    let pairs: Vec<(&str, &str)> = keys.iter().map(|(s, k)| (s.as_str(), k.as_str())).collect();
    assert_eq!(
        pairs,
        [
            ("", "top"),
            ("node", "call_domain"),
            ("node", "state_dir"),
            ("dialin", "name_prefix"),
            ("dialin", "credentials"),
            ("dialin.header_policy", "allow"),
        ]
    );
}

#[test]
fn missing_config_keys_are_reported_with_their_section() {
    let keys: Vec<(String, String)> = [
        ("", "top"),
        ("node", "state_dir"),
        ("node", "drain_secs"),
        ("dialin", "open"),
        ("dialin.header_policy", "allow"),
        ("limits", "max_calls"),
    ]
    .iter()
    .map(|(s, k)| (s.to_string(), k.to_string()))
    .collect();
    let reference = "\
# Configuration
`top` is anywhere.
## `[node]`
`state_dir`: where state lives.
## `[[dialin]]`
### Who may call
`allow` is not `open`'s section's key here, but `open` is.
### `[dialin.header_policy]`
Nothing named.
## Elsewhere
`drain_secs` and `allow`, outside their sections.
";
    let missing = missing_keys(reference, &keys);
    assert_eq!(
        missing,
        [
            "[node] drain_secs",
            "[dialin.header_policy] allow",
            "[limits] max_calls: no heading names `[limits]`",
        ]
    );
}
