//! The repository explains itself: every document a tracked file points to
//! is in the repository. Markdown links (`[text](path#anchor)`) must name
//! a tracked file and, into a markdown file, one of its headings; a bare
//! mention of a document path (`docs/workloads.md`, `DESIGN.md`) in any
//! tracked text file must name a tracked file, from the repository's root
//! or from the mentioning file's folder. Run directories' own file names
//! (`summary.md`, written by the harness) are not documents.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the harness crate sits in the repository").to_path_buf()
}

fn tracked_files(root: &Path) -> BTreeSet<PathBuf> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "-z"])
        .output()
        .expect("git ls-files (git is needed to list the tracked files)");
    assert!(out.status.success(), "git ls-files failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout.split(|&b| b == 0).filter(|p| !p.is_empty()).map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned())).collect()
}

/// `base/rel` with `.` and `..` resolved, as a repository-relative path.
fn join(base: &Path, rel: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in base.join(rel).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, code marks and punctuation
/// dropped, spaces to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The lines of `markdown` outside ``` code fences (fence lines included
/// in neither).
fn outside_fences(markdown: &str) -> impl Iterator<Item = &str> {
    let mut fenced = false;
    markdown.lines().filter(move |line| {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for line in outside_fences(markdown).filter(|l| l.starts_with('#')) {
        let base = slug(line.trim_start_matches('#'));
        let mut anchor = base.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}

/// Link targets of `[text](target)` in markdown, outside code fences.
fn markdown_links(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in outside_fences(markdown) {
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].trim().to_string());
            rest = &after[end..];
        }
    }
    out
}

/// Path-like mentions of markdown documents: a token ending in `.md` that
/// has a folder in it or an upper-case name (README.md, DESIGN.md).
fn document_mentions(text: &str) -> Vec<String> {
    let is_path_char = |c: char| c.is_ascii_alphanumeric() || "_./-".contains(c);
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if !is_path_char(chars[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && is_path_char(chars[i]) {
            i += 1;
        }
        let token: String = chars[start..i].iter().collect();
        let token = token.trim_end_matches('.');
        let preceded_by_url = start >= 3 && chars[start.saturating_sub(3)..start].iter().collect::<String>() == "://";
        let Some(stem) = token.strip_suffix(".md") else { continue };
        let name = stem.rsplit('/').next().unwrap_or(stem);
        let upper = !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_');
        if !preceded_by_url && !token.starts_with('/') && (stem.contains('/') || upper) {
            out.push(token.to_string());
        }
    }
    out
}

#[test]
fn every_document_referred_to_is_in_the_repository() {
    let root = repo_root();
    let tracked = tracked_files(&root);
    let text_exts = ["md", "rs", "toml", "yaml", "yml", "sh", "py", "c", "h", "txt", "j2", "cfg", "ipynb"];
    let mut missing = Vec::new();
    for file in &tracked {
        let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
        let is_script = file.file_name().is_some_and(|n| n == "run" || n == "Containerfile");
        if !text_exts.contains(&ext) && !is_script {
            continue;
        }
        // This file names missing documents on purpose, to test the checker.
        if file.ends_with("harness/tests/docs_refs.rs") {
            continue;
        }
        // Stored run directories hold generated text, not documentation.
        if file.starts_with("results") && ext != "md" || file.file_name().is_some_and(|n| n == "summary.md") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(root.join(file)) else { continue };
        let dir = file.parent().unwrap_or(Path::new(""));
        if ext == "md" {
            for link in markdown_links(&text) {
                if link.contains("://") || link.starts_with("mailto:") || link.is_empty() {
                    continue;
                }
                let (path, anchor) = link.split_once('#').map_or((link.as_str(), None), |(p, a)| (p, Some(a)));
                let target = if path.is_empty() { file.clone() } else { join(dir, path) };
                let is_dir = tracked.iter().any(|t| t.starts_with(&target) && *t != target);
                if !tracked.contains(&target) && !is_dir {
                    missing.push(format!("{}: link to {link}: no such file", file.display()));
                    continue;
                }
                if let (Some(anchor), true) = (anchor, target.extension().is_some_and(|e| e == "md")) {
                    let body = std::fs::read_to_string(root.join(&target)).unwrap_or_default();
                    if !anchors(&body).contains(anchor) {
                        missing.push(format!("{}: link to {link}: no such heading in {}", file.display(), target.display()));
                    }
                }
            }
        }
        for mention in document_mentions(&text) {
            let from_root = join(Path::new(""), &mention);
            let from_dir = join(dir, &mention);
            if !tracked.contains(&from_root) && !tracked.contains(&from_dir) {
                missing.push(format!("{}: mentions {mention}, which is not in the repository", file.display()));
            }
        }
    }
    assert!(missing.is_empty(), "references to documents that do not exist:\n{}", missing.join("\n"));
}

#[test]
fn the_checker_sees_what_it_must() {
    assert_eq!(document_mentions("see WORKLOADS.md §1 and docs/x.md, summary.md, https://a.b/c/D.md"), ["WORKLOADS.md", "docs/x.md"]);
    assert_eq!(markdown_links("[a](docs/README.md#the-pool) `x` [b](#top)"), ["docs/README.md#the-pool", "#top"]);
    assert!(anchors("# Top\n## The pool (`pool`)\n```\n# not a heading\n```\n## The pool (`pool`)").contains("the-pool-pool-1"));
    assert_eq!(join(Path::new("docs"), "../system/src/lib.rs"), PathBuf::from("system/src/lib.rs"));
}
