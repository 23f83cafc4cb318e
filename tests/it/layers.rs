//! The crate's import direction, checked on its source (issue 10).
//!
//! Every `src/**/*.rs` is read; every reference to another module of the
//! crate (`use crate::x…`, `use crate::{x, y}` groups, `use super::…`,
//! inline paths `crate::x::…` / `super::…`, a child module's name, and in
//! `main.rs` `pinless::…`) is resolved to the file it names. Two rules:
//!
//! 1. Between top-level modules, imports go down `ORDER` only. Modules of
//!    one tier are siblings and import none of each other.
//! 2. Inside a module directory, the file-level import graph has no cycle.
//!    A facade (`mod.rs`, `lib.rs`) is looked through: `super::Item`
//!    re-exported by `mod.rs` counts as an import of the file defining it,
//!    and a facade's own `pub use` lines are not edges of it.
//!
//! The scan is lexical (comments and string literals are skipped), which is
//! enough for code written the ordinary way; macros that build paths are
//! not followed. `cargo test --test it layers -- --nocapture` prints the graph.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// One tier of the layer order.
struct Tier {
    modules: &'static [&'static str],
    why: &'static str,
}

/// The layer order, top to bottom: a module may import only modules of a
/// lower tier. Why an order at all: a layer can then be read, tested and
/// changed knowing only what is below it, and no change below breaks what
/// is above through a back door. A new top-level module must be placed
/// here; a single-file module not listed is a leaf.
const ORDER: &[Tier] = &[
    Tier {
        modules: &["main", "lib"],
        why: "the binary and the crate root: declare modules, re-export, run",
    },
    Tier {
        modules: &["lifecycle", "probe"],
        why: "how a running node stops: drives the gateway on signals; the probe, a test caller of its own",
    },
    Tier {
        modules: &["gateway"],
        why: "wiring: starts every layer and connects them; may import anything",
    },
    Tier {
        modules: &["api"],
        why: "HTTP in front of the calls",
    },
    Tier {
        modules: &["provisioning", "register"],
        why: "entries provisioned at runtime (stored, shared through Redis, put in force); bindings at registrars: siblings",
    },
    Tier {
        modules: &["call"],
        why: "what a call is and does; drives the protocols below",
    },
    Tier {
        modules: &["sip", "media", "stream", "webhook", "store", "cluster"],
        why: "the protocols (SIP, RTP, bot streams), the store and the cluster (Redis) a call uses: siblings that know nothing of each other",
    },
    Tier {
        modules: &["config"],
        why: "read by every layer, imports none of them",
    },
    Tier {
        modules: &["ct", "codec", "clock", "confine", "hep", "running", "sdes"],
        why: "leaves: small shared types and functions; import nothing of the crate",
    },
];

#[test]
fn imports_go_down_the_layer_order_and_files_have_no_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let crate_ = Crate::read(&src);
    let mut problems = Vec::new();

    // Rule 1: module-level edges.
    let mut module_edges: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut unknown = BTreeSet::new();
    for file in &crate_.files {
        let from = file.top();
        for r in &file.refs {
            let Some(to) = crate_.named_module(&r.abs) else {
                continue;
            };
            if to == from {
                continue;
            }
            *module_edges.entry((from.clone(), to.clone())).or_default() += 1;
            let (Some(f), Some(t)) = (crate_.tier(&from), crate_.tier(&to)) else {
                for m in [&from, &to] {
                    if crate_.tier(m).is_none() {
                        unknown.insert(m.clone());
                    }
                }
                continue;
            };
            if t > f {
                continue;
            }
            let why = if t == f {
                format!(
                    "{from} and {to} share a tier ({}) and may not import each other",
                    ORDER[f].modules.join(", ")
                )
            } else {
                format!("{from} may not import {to}, which is above it in the layer order")
            };
            problems.push(format!("src/{}:{}: {}: {why}", file.rel, r.line, r.text));
        }
    }
    for m in &unknown {
        problems.push(format!(
            "module `{m}` is not in the layer order: place it in ORDER in tests/layers.rs"
        ));
    }

    // Rule 2: file-level cycles inside each module.
    let mut file_edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &crate_.files {
        for r in &file.refs {
            if r.reexport && file.facade {
                continue;
            }
            let Some(target) = crate_.resolve_file(&r.abs) else {
                continue;
            };
            let target = &crate_.files[target];
            if target.rel != file.rel && target.top() == file.top() && file.top() != "lib" {
                file_edges
                    .entry(file.rel.clone())
                    .or_default()
                    .insert(target.rel.clone());
            }
        }
    }
    for cycle in cycles(&file_edges) {
        problems.push(format!("file import cycle: {}", cycle.join(" -> ")));
    }

    println!("layer order, top to bottom:");
    for tier in ORDER {
        println!("  {}: {}", tier.modules.join(", "), tier.why);
    }
    println!("module imports (from -> to: references):");
    for ((from, to), n) in &module_edges {
        println!("  {from} -> {to}: {n}");
    }
    println!("file imports inside modules:");
    for (from, tos) in &file_edges {
        let tos: Vec<&str> = tos.iter().map(String::as_str).collect();
        println!("  {from} -> {}", tos.join(", "));
    }
    if problems.is_empty() {
        println!("layer check: no violations");
    } else {
        println!("layer check: {} violation(s)", problems.len());
        for p in &problems {
            println!("  {p}");
        }
    }
    assert!(
        problems.is_empty(),
        "the import direction is broken:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_scan_expands_groups_resolves_super_and_skips_comments_and_literals() {
    let text = r##"
use crate::{a::X, b::{self, Y as Z}};
use super::c::W;
// use crate::commented::Out;
/* crate::block::Out */
const S: &str = "crate::in_string::Out \" crate::escaped::Out";
const R: &str = r#"crate::raw::Out"#;
fn f<'a>(x: &'a str) -> char { crate::inline::call(); let _ = '"'; 'x' }
mod tests { use super::*; use super::super::d; }
fn g() { tests::h(); }
"##;
    let module = vec!["m".to_string(), "f".to_string()];
    let (refs, uses) = scan(&tokens(&strip(text)), &module, false);
    let got: Vec<(usize, String)> = refs.iter().map(|r| (r.line, r.abs.join("::"))).collect();
    let want: Vec<(usize, String)> = [
        (2, "a::X"),
        (2, "b"),
        (2, "b::Y"),
        (3, "m::c::W"),
        (8, "inline::call"),
        (9, "m::f::*"),
        (9, "m::d"),
    ]
    .into_iter()
    .map(|(l, p)| (l, p.to_string()))
    .collect();
    assert_eq!(got, want);
    assert_eq!(uses["Z"], ["b", "Y"]);
    assert_eq!(uses["W"], ["m", "c", "W"]);
}

#[test]
fn cycles_are_reported_once_each_as_a_path() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, b) in [
        ("a", "b"),
        ("b", "a"),
        ("c", "d"),
        ("d", "e"),
        ("e", "c"),
        ("e", "f"),
    ] {
        edges.entry(a.into()).or_default().insert(b.into());
    }
    let found: Vec<String> = cycles(&edges).iter().map(|c| c.join(" -> ")).collect();
    assert_eq!(found, ["a -> b -> a", "c -> d -> e -> c"]);
}

/// A reference to a path of the crate.
struct Ref {
    line: usize,
    /// As written, e.g. `super::layer::DialogKey`.
    text: String,
    /// Absolute module path, without `crate`.
    abs: Vec<String>,
    /// Part of a `pub use` (a re-export).
    reexport: bool,
}

struct File {
    /// Path under `src/`, e.g. `sip/layer.rs`.
    rel: String,
    /// Module path, e.g. `["sip", "layer"]`; `[]` for `lib.rs` and `main.rs`.
    module: Vec<String>,
    /// `lib.rs` or a `mod.rs`: looked through when resolving.
    facade: bool,
    /// Names the file's top-level `use` lines bring in, to their paths.
    uses: HashMap<String, Vec<String>>,
    refs: Vec<Ref>,
}

impl File {
    /// The top-level module the file belongs to (`lib`, `main` for the roots).
    fn top(&self) -> String {
        match (self.rel.as_str(), self.module.first()) {
            ("main.rs", _) => "main".into(),
            (_, None) => "lib".into(),
            (_, Some(m)) => m.clone(),
        }
    }
}

struct Crate {
    files: Vec<File>,
    /// Module path to file index (the library crate's files only).
    modules: HashMap<Vec<String>, usize>,
    /// Top-level modules that are a single file (`src/x.rs`, no `src/x/`).
    single_files: BTreeSet<String>,
}

impl Crate {
    fn read(src: &Path) -> Crate {
        let mut paths = Vec::new();
        collect(src, &mut paths);
        paths.sort();
        let texts: Vec<(String, String)> = paths
            .iter()
            .map(|p| {
                let rel = p
                    .strip_prefix(src)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                (rel, std::fs::read_to_string(p).unwrap())
            })
            .collect();
        // Module paths from file names, then `#[path]` attributes.
        let mut module_of: HashMap<String, Vec<String>> = texts
            .iter()
            .map(|(rel, _)| (rel.clone(), module_from_name(rel)))
            .collect();
        for (rel, text) in &texts {
            for (name, target) in path_attributes(text) {
                let dir = rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                let target = if dir.is_empty() {
                    target
                } else {
                    format!("{dir}/{target}")
                };
                let mut module = module_of[rel].clone();
                module.push(name);
                module_of.insert(target, module);
            }
        }
        let mut files = Vec::new();
        let mut modules = HashMap::new();
        let mut single_files = BTreeSet::new();
        for (rel, text) in &texts {
            let module = module_of[rel].clone();
            let is_main = rel == "main.rs";
            if !rel.contains('/') && rel != "lib.rs" && !is_main {
                let name = rel.trim_end_matches(".rs");
                if !src.join(name).is_dir() {
                    single_files.insert(name.to_string());
                }
            }
            let facade = rel == "lib.rs" || rel.ends_with("/mod.rs");
            let toks = tokens(&strip(text));
            let (refs, uses) = scan(&toks, &module, is_main);
            if !is_main {
                modules.insert(module.clone(), files.len());
            }
            files.push(File {
                rel: rel.clone(),
                module,
                facade,
                uses,
                refs,
            });
        }
        Crate {
            files,
            modules,
            single_files,
        }
    }

    /// The file `abs` names, looking through facades' re-exports.
    fn resolve_file(&self, abs: &[String]) -> Option<usize> {
        let mut abs = abs.to_vec();
        for _ in 0..8 {
            let k = (0..=abs.len())
                .rev()
                .find(|k| self.modules.contains_key(&abs[..*k]))?;
            let index = self.modules[&abs[..k]];
            let file = &self.files[index];
            let rest = &abs[k..];
            match rest.first().and_then(|name| file.uses.get(name)) {
                Some(target) if file.facade => {
                    let next: Vec<String> = target.iter().chain(&rest[1..]).cloned().collect();
                    if next == abs {
                        return Some(index);
                    }
                    abs = next;
                }
                _ => return Some(index),
            }
        }
        None
    }

    /// The top-level module a path names: its first segment when that is a
    /// module, else (an item of the crate root) where the root's re-export
    /// leads.
    fn named_module(&self, abs: &[String]) -> Option<String> {
        if let Some(first) = abs.first()
            && self.modules.contains_key(std::slice::from_ref(first))
        {
            return Some(first.clone());
        }
        let file = &self.files[self.resolve_file(abs)?];
        Some(file.top())
    }

    /// Index into ORDER; a single-file module not listed is a leaf.
    fn tier(&self, module: &str) -> Option<usize> {
        ORDER
            .iter()
            .position(|t| t.modules.contains(&module))
            .or_else(|| {
                self.single_files
                    .contains(module)
                    .then_some(ORDER.len() - 1)
            })
    }
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `sip/layer.rs` → `[sip, layer]`; `sip/mod.rs` → `[sip]`; `lib.rs` → `[]`.
fn module_from_name(rel: &str) -> Vec<String> {
    if rel == "lib.rs" || rel == "main.rs" {
        return Vec::new();
    }
    let mut parts: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(String::from)
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// `#[path = "x.rs"] mod name;` pairs of a file (read before stripping
/// strings, since the path is one).
fn path_attributes(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("#[path") {
            pending = rest.split('"').nth(1).map(String::from);
            continue;
        }
        if let Some(target) = pending.take() {
            let decl = line
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub ");
            if let Some(name) = decl.strip_prefix("mod ").map(|n| n.trim_end_matches(';')) {
                out.push((name.trim().to_string(), target));
            } else if line.starts_with("#[") {
                pending = Some(target);
            }
        }
    }
    out
}

/// `text` with comments, string and character literals blanked (newlines
/// kept, so lines still count).
fn strip(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if ch == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
            out.push(' ');
            continue;
        }
        let after_ident = i > 0 && ident(c[i - 1]);
        if !after_ident && (ch == 'r' || (ch == 'b' && next == Some('r'))) {
            // Raw strings: r"…", r#"…"#, br"…".
            let mut j = i + if ch == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) == Some(&'"') {
                j += 1;
                while j < c.len() {
                    if c[j] == '"' && (0..hashes).all(|h| c.get(j + 1 + h) == Some(&'#')) {
                        j += 1 + hashes;
                        break;
                    }
                    if c[j] == '\n' {
                        out.push('\n');
                    }
                    j += 1;
                }
                out.push(' ');
                i = j;
                continue;
            }
        }
        if ch == '"' {
            let mut j = i + 1;
            while j < c.len() && c[j] != '"' {
                if c[j] == '\\' {
                    j += 1;
                }
                if c.get(j) == Some(&'\n') {
                    out.push('\n');
                }
                j += 1;
            }
            out.push(' ');
            i = j + 1;
            continue;
        }
        if ch == '\'' {
            if next == Some('\\') {
                // An escaped character literal: '\n', '\'', '\u{…}'.
                let mut j = i + 3;
                while j < c.len() && c[j] != '\'' {
                    j += 1;
                }
                out.push(' ');
                i = j + 1;
                continue;
            }
            if c.get(i + 2) == Some(&'\'') {
                out.push(' ');
                i += 3;
                continue;
            }
            // A lifetime or a label.
            out.push(' ');
            i += 1;
            continue;
        }
        out.push(ch);
        i += 1;
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    Colons,
    Open,
    Close,
    Comma,
    Semi,
    Star,
    Other,
}

/// Tokens with their line (1-based).
fn tokens(text: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(c[start..i].iter().collect()), line));
        } else if ch.is_ascii_digit() {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push((Tok::Other, line));
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push((Tok::Colons, line));
            i += 2;
        } else {
            let tok = match ch {
                '{' => Tok::Open,
                '}' => Tok::Close,
                ',' => Tok::Comma,
                ';' => Tok::Semi,
                '*' => Tok::Star,
                _ => Tok::Other,
            };
            out.push((tok, line));
            i += 1;
        }
    }
    out
}

fn ident(toks: &[(Tok, usize)], i: usize) -> Option<&str> {
    match toks.get(i) {
        Some((Tok::Ident(s), _)) => Some(s),
        _ => None,
    }
}

fn is(toks: &[(Tok, usize)], i: usize, tok: &Tok) -> bool {
    toks.get(i).is_some_and(|(t, _)| t == tok)
}

/// The crate references of one file, and what its top-level `use` lines
/// name (for looking through facades).
fn scan(
    toks: &[(Tok, usize)],
    module: &[String],
    is_main: bool,
) -> (Vec<Ref>, HashMap<String, Vec<String>>) {
    // Child modules declared with `mod x;`: `x::…` names them.
    let children: BTreeSet<String> = (0..toks.len())
        .filter(|&i| ident(toks, i) == Some("mod") && is(toks, i + 2, &Tok::Semi))
        .filter_map(|i| ident(toks, i + 1).map(String::from))
        .collect();
    let mut refs = Vec::new();
    let mut uses = HashMap::new();
    // Inline modules (`mod tests { … }`) and the brace depth they opened at.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        let current: Vec<String> = module
            .iter()
            .cloned()
            .chain(inline.iter().map(|(n, _)| n.clone()))
            .collect();
        let resolve = |segs: &[String]| -> Option<Vec<String>> {
            let first = segs.first()?.as_str();
            let mut abs = match first {
                "pinless" if is_main => Vec::new(),
                _ if is_main => return None,
                "crate" => Vec::new(),
                "self" => current.clone(),
                "super" => {
                    let ups = segs.iter().take_while(|s| *s == "super").count();
                    let mut base = current.clone();
                    for _ in 0..ups {
                        base.pop()?;
                    }
                    let mut abs = base;
                    abs.extend(segs[ups..].iter().cloned());
                    return Some(abs);
                }
                child if inline.is_empty() && children.contains(child) => {
                    let mut abs = module.to_vec();
                    abs.push(child.to_string());
                    abs
                }
                _ => return None,
            };
            abs.extend(segs[1..].iter().cloned());
            Some(abs)
        };
        match &toks[i].0 {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            Tok::Ident(word) if word == "mod" => {
                if let (Some(name), true) = (ident(toks, i + 1), is(toks, i + 2, &Tok::Open)) {
                    inline.push((name.to_string(), depth));
                }
            }
            Tok::Ident(word) if word == "use" => {
                // `pub use` or `pub(crate) use`.
                let reexport = (i >= 1 && ident(toks, i - 1) == Some("pub"))
                    || (i >= 4
                        && ident(toks, i - 4) == Some("pub")
                        && is(toks, i - 3, &Tok::Other));
                let mut entries = Vec::new();
                let mut j = i + 1;
                use_tree(toks, &mut j, Vec::new(), &mut entries);
                while j < toks.len() && !is(toks, j, &Tok::Semi) {
                    j += 1;
                }
                for (segs, alias, line) in entries {
                    let Some(abs) = resolve(&segs) else { continue };
                    if inline.is_empty() {
                        let name = alias.or_else(|| segs.last().cloned());
                        if let Some(name) = name.filter(|n| n != "*" && n != "_") {
                            uses.insert(name, abs.clone());
                        }
                    }
                    refs.push(Ref {
                        line,
                        text: segs.join("::"),
                        abs,
                        reexport,
                    });
                }
                i = j;
            }
            Tok::Ident(_)
                if !(i > 0 && is(toks, i - 1, &Tok::Colons)) && is(toks, i + 1, &Tok::Colons) =>
            {
                let mut segs = vec![ident(toks, i).unwrap_or_default().to_string()];
                let mut j = i + 1;
                while is(toks, j, &Tok::Colons) {
                    let Some(next) = ident(toks, j + 1) else {
                        break;
                    };
                    segs.push(next.to_string());
                    j += 2;
                }
                if let Some(abs) = resolve(&segs) {
                    refs.push(Ref {
                        line: toks[i].1,
                        text: segs.join("::"),
                        abs,
                        reexport: false,
                    });
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    (refs, uses)
}

/// One `use` tree from `toks[*i]` on: every leaf path, with its alias and
/// the line it starts on. `x::{self, y}` gives `x` and `x::y`.
fn use_tree(
    toks: &[(Tok, usize)],
    i: &mut usize,
    prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>, usize)>,
) {
    let mut segs = prefix;
    let line = toks.get(*i).map(|t| t.1).unwrap_or(0);
    let mut alias = None;
    while let Some((tok, _)) = toks.get(*i) {
        match tok {
            Tok::Colons => *i += 1,
            Tok::Ident(s) if s == "as" => {
                alias = ident(toks, *i + 1).map(String::from);
                *i += 2;
                break;
            }
            Tok::Ident(s) if s == "self" && !segs.is_empty() => *i += 1,
            Tok::Ident(s) => {
                segs.push(s.clone());
                *i += 1;
            }
            Tok::Star => {
                segs.push("*".into());
                *i += 1;
                break;
            }
            Tok::Open => {
                *i += 1;
                while let Some((tok, _)) = toks.get(*i) {
                    match tok {
                        Tok::Close => {
                            *i += 1;
                            return;
                        }
                        Tok::Comma => *i += 1,
                        Tok::Semi => return,
                        _ => {
                            let before = *i;
                            use_tree(toks, i, segs.clone(), out);
                            if *i == before {
                                *i += 1;
                            }
                        }
                    }
                }
                return;
            }
            _ => break,
        }
    }
    if !segs.is_empty() {
        out.push((segs, alias, line));
    }
}

/// Every cycle of the graph, one per strongly connected component, as
/// `a.rs -> b.rs -> a.rs`, with the component's other files if it has more.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let nodes: BTreeSet<&String> = edges
        .iter()
        .flat_map(|(from, tos)| std::iter::once(from).chain(tos))
        .collect();
    let reach = |from: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(n) = todo.pop() {
            for next in edges.get(&n).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&String, BTreeSet<String>> =
        nodes.iter().map(|n| (*n, reach(n))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for n in &nodes {
        if done.contains(*n) || !reachable[n].contains(*n) {
            continue;
        }
        let component: BTreeSet<String> = reachable[n]
            .iter()
            .filter(|m| reachable.get(m).is_some_and(|r| r.contains(*n)))
            .cloned()
            .collect();
        done.extend(component.iter().cloned());
        // Shortest way round from n, by breadth-first search.
        let mut previous: BTreeMap<String, String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([(*n).clone()]);
        'search: while let Some(at) = queue.pop_front() {
            for next in edges.get(&at).into_iter().flatten() {
                if next == *n {
                    previous.insert(format!("{n}#end"), at.clone());
                    break 'search;
                }
                if component.contains(next) && !previous.contains_key(next) {
                    previous.insert(next.clone(), at.clone());
                    queue.push_back(next.clone());
                }
            }
        }
        let mut path = vec![(*n).clone()];
        let mut at = previous[&format!("{n}#end")].clone();
        while at != **n {
            path.push(at.clone());
            at = previous[&at].clone();
        }
        path.push((*n).clone());
        let last = path.len() - 1;
        path[1..last].reverse();
        let mut cycle = path;
        let on_path: BTreeSet<&String> = cycle.iter().collect();
        let others: Vec<String> = component
            .iter()
            .filter(|m| !on_path.contains(m))
            .cloned()
            .collect();
        if !others.is_empty() {
            let last = cycle.len() - 1;
            cycle[last] = format!(
                "{} (with {} in the same cycle)",
                cycle[last],
                others.join(", ")
            );
        }
        out.push(cycle);
    }
    out
}
