//! The documentation's links: every relative link in README.md and
//! docs/*.md names a file or folder of this repository, and none of them
//! points at the team's notes that live beside it, outside the
//! repository (a clone has none).
//! Standard library only: no AWS, no emulator.

use std::path::{Path, PathBuf};

/// The repository's root: this crate is `tests/`.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// README.md and every Markdown file in docs/, with their text.
fn documents() -> Vec<(PathBuf, String)> {
    let root = root();
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("a docs/ folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, text)
        })
        .collect()
}

/// The text with the lines of fenced code blocks blanked (line numbers kept):
/// what is inside them is shown, not linked.
fn without_fences(text: &str) -> String {
    let mut fence: Option<&str> = None;
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(m)) => fence = Some(m),
            (Some(open), Some(m)) if open == m => fence = None,
            (None, None) => out.push_str(line),
            _ => {}
        }
        out.push('\n');
    }
    out
}

/// Every inline link (and image) target in `text`, with the 1-based line of
/// its opening bracket. Code spans are skipped; a link's text may hold code
/// spans and may wrap onto the next line, but not past a blank line.
fn links(text: &str) -> Vec<(usize, String)> {
    let text = without_fences(text);
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut line = 1;
    let mut i = 0;
    // Skips the code span that starts at `at` (a run of backticks); returns
    // the index after it, or `at + run` when it does not close within its
    // paragraph.
    let skip_code = |at: usize| -> usize {
        let run = chars[at..].iter().take_while(|c| **c == '`').count();
        let mut j = at + run;
        while j < chars.len() {
            if chars[j] == '\n' && chars.get(j + 1) == Some(&'\n') {
                break;
            }
            if chars[j] == '`' {
                let close = chars[j..].iter().take_while(|c| **c == '`').count();
                if close == run {
                    return j + close;
                }
                j += close;
            } else {
                j += 1;
            }
        }
        at + run
    };
    while i < chars.len() {
        match chars[i] {
            '\n' => {
                line += 1;
                i += 1;
            }
            '`' => {
                let end = skip_code(i);
                line += chars[i..end].iter().filter(|c| **c == '\n').count();
                i = end;
            }
            '[' => {
                // The link text: up to the matching `]`, within the paragraph.
                let mut j = i + 1;
                let mut depth = 0;
                let mut close = None;
                while j < chars.len() {
                    match chars[j] {
                        '`' => {
                            j = skip_code(j);
                            continue;
                        }
                        '\n' if chars.get(j + 1) == Some(&'\n') => break,
                        '[' => depth += 1,
                        ']' if depth == 0 => {
                            close = Some(j);
                            break;
                        }
                        ']' => depth -= 1,
                        _ => {}
                    }
                    j += 1;
                }
                let Some(close) = close.filter(|c| chars.get(c + 1) == Some(&'(')) else {
                    i += 1;
                    continue;
                };
                // The target: up to the matching `)`.
                let mut k = close + 2;
                let mut depth = 1;
                while k < chars.len() && chars[k] != '\n' {
                    match chars[k] {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    k += 1;
                }
                if k >= chars.len() || chars[k] != ')' {
                    i += 1;
                    continue;
                }
                let target: String = chars[close + 2..k].iter().collect();
                // `(path "title")` and `(<path>)`.
                let target = target.split_whitespace().next().unwrap_or("");
                let target = target.trim_start_matches('<').trim_end_matches('>');
                found.push((line, target.to_string()));
                line += chars[i..=k].iter().filter(|c| **c == '\n').count();
                i = k + 1;
            }
            _ => i += 1,
        }
    }
    found
}

/// The file a link names, relative to its document, or `None` for a link
/// that names no file of the repository: a URL, a mail address, an anchor
/// in the same document.
fn local_path(target: &str) -> Option<String> {
    if target.starts_with('#') || target.starts_with("mailto:") || target.contains("://") {
        return None;
    }
    let path = target.split('#').next().unwrap_or("").split('?').next().unwrap_or("");
    (!path.is_empty()).then(|| path.replace("%20", " "))
}

#[test]
fn every_relative_link_in_the_readme_and_docs_resolves() {
    let repo = root().canonicalize().expect("the repository root");
    let documents = documents();
    for name in ["design.md", "format.md", "operations.md"] {
        assert!(documents.iter().any(|(p, _)| p.ends_with(Path::new("docs").join(name))), "docs/{name} is missing");
    }
    let mut checked = 0;
    let mut readme_links = 0;
    let mut broken = Vec::new();
    for (file, text) in &documents {
        let dir = file.parent().expect("a document's folder");
        let shown = file.strip_prefix(root()).unwrap_or(file).display().to_string();
        for (line, target) in links(text) {
            let Some(path) = local_path(&target) else { continue };
            checked += 1;
            if file.ends_with("README.md") {
                readme_links += 1;
            }
            let resolved = dir.join(&path);
            match resolved.canonicalize() {
                Ok(real) if real.starts_with(&repo) => {}
                Ok(real) => {
                    broken.push(format!("{shown}:{line}: ({target}) leaves the repository: {}", real.display()))
                }
                Err(_) => {
                    broken.push(format!("{shown}:{line}: ({target}) names no file or folder: {}", resolved.display()))
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(readme_links >= 3, "README.md links to the docs: found {readme_links} relative links");
    assert!(checked >= 20, "the link reader found the documents' links: only {checked}");
}

/// The folder of notes beside the repository, spelled so that this file
/// does not name it literally.
const NOTES: &str = concat!("sha", "red/");

#[test]
fn no_doc_points_at_the_notes_outside_the_repository() {
    let mut found = Vec::new();
    let mut lines = 0;
    for (file, text) in documents() {
        let name = file.strip_prefix(root()).unwrap_or(&file).display().to_string();
        for (n, line) in text.lines().enumerate() {
            lines += 1;
            for (at, _) in line.match_indices(NOTES) {
                let outside = line[..at].ends_with("../");
                let rest: String = line[at + NOTES.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || "._-/".contains(*c))
                    .collect();
                if outside || rest.trim_end_matches('.').ends_with(".md") {
                    found.push(format!("{name}:{}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(lines > 500, "the documents were read: {lines} lines");
    assert!(
        found.is_empty(),
        "paths outside the repository (a clone has none of the notes beside it):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_link_reader_finds_links_and_skips_the_rest() {
    let text = "See [the map](docs/design.md) and [`format`](docs/format.md#seeking).\n\
                A [wrapped\nlink](a/b.rs), an image ![x](img.png \"title\"), `[code](not/a/link)`.\n\
                \n\
                ```\n[in a fence](not/a/link)\n```\n\
                [web](https://example.com) [mail](mailto:x@example.com) [here](#anchor) [array][0] (plain)\n";
    let found = links(text);
    let targets: Vec<&str> = found.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        targets,
        [
            "docs/design.md",
            "docs/format.md#seeking",
            "a/b.rs",
            "img.png",
            "https://example.com",
            "mailto:x@example.com",
            "#anchor"
        ]
    );
    assert_eq!(found[2].0, 2, "a link is reported on the line it starts");
    assert_eq!(found[4].0, 8, "line numbers count the fenced lines");
    let local: Vec<Option<String>> = targets.iter().map(|t| local_path(t)).collect();
    assert_eq!(
        local,
        [
            Some("docs/design.md".into()),
            Some("docs/format.md".into()),
            Some("a/b.rs".into()),
            Some("img.png".into()),
            None,
            None,
            None
        ]
    );
}
