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

// ------------------------------------------------------------ the first hour

/// The Makefile's verbs (`name:` at the start of a line).
fn make_targets() -> Vec<String> {
    let makefile = std::fs::read_to_string(root().join("Makefile")).expect("Makefile");
    makefile
        .lines()
        .filter_map(|l| l.split_once(':').map(|(name, _)| name))
        .filter(|name| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
        .map(str::to_string)
        .collect()
}

/// The fenced blocks of `text` under the heading that starts with `heading`
/// (up to the next heading of the same or a higher level).
fn fenced_blocks_under(text: &str, heading: &str) -> Vec<String> {
    let mut level = None;
    let mut blocks = Vec::new();
    let mut block: Option<String> = None;
    for line in text.lines() {
        if let Some(b) = block.as_mut() {
            if line.trim_start().starts_with("```") {
                blocks.push(block.take().unwrap_or_default());
            } else {
                b.push_str(line);
                b.push('\n');
            }
            continue;
        }
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if hashes > 0 && line[hashes..].starts_with(' ') {
            match level {
                None if line[hashes..].trim().starts_with(heading) => level = Some(hashes),
                Some(l) if hashes <= l => level = None,
                _ => {}
            }
        } else if level.is_some() && line.trim_start().starts_with("```") {
            block = Some(String::new());
        }
    }
    blocks
}

#[test]
fn the_readme_is_short_and_its_quickstart_runs_verbs_the_makefile_has() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(lines < 200, "README.md has {lines} lines: keep it under 200, move the rest into docs/");
    let targets = make_targets();
    let commands: Vec<String> = fenced_blocks_under(&readme, "Quickstart")
        .iter()
        .flat_map(|b| b.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect::<Vec<_>>())
        .collect();
    assert!(commands.len() >= 2, "the quickstart shows its commands: {commands:?}");
    for command in &commands {
        let verb = command.strip_prefix("make ").unwrap_or_else(|| panic!("the quickstart runs make verbs: {command}"));
        let verb = verb.split_whitespace().next().unwrap_or_default();
        assert!(targets.iter().any(|t| t == verb), "`{command}`: the Makefile has no {verb:?} ({targets:?})");
    }
    for verb in ["demo", "test"] {
        assert!(commands.iter().any(|c| c == &format!("make {verb}")), "the quickstart runs make {verb}");
    }
}

/// template.yaml's parameters: (name, required = no Default).
fn template_parameters() -> Vec<(String, bool)> {
    let template = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let section = template.split("\nParameters:\n").nth(1).expect("a Parameters section");
    let mut params: Vec<(String, bool)> = Vec::new();
    for line in section.lines() {
        if !line.is_empty() && !line.starts_with(' ') && !line.starts_with('#') {
            break; // the next top-level section
        }
        if let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':')) {
            if !name.starts_with(' ') && !name.starts_with('#') {
                params.push((name.to_string(), true));
            }
        } else if line.trim_start().starts_with("Default:") {
            if let Some(last) = params.last_mut() {
                last.1 = false;
            }
        }
    }
    params
}

/// What the guide's `sam deploy` command sets, or why it cannot be read.
fn deploy_command_parameters(guide: &str) -> Result<Vec<String>, String> {
    let blocks: Vec<String> = fenced_blocks_under(guide, "").into_iter().filter(|b| b.contains("sam deploy")).collect();
    let [block] = blocks.as_slice() else {
        return Err(format!("one fenced block holds `sam deploy`, not {}", blocks.len()));
    };
    let after = block.split("--parameter-overrides").nth(1).ok_or("the command has no --parameter-overrides")?;
    Ok(after
        .split_whitespace()
        .filter_map(|word| word.split_once('=').map(|(name, _)| name))
        .filter(|name| !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()))
        .map(str::to_string)
        .collect())
}

/// Where the guide's command and the template disagree.
fn deploy_drift(guide: &str, params: &[(String, bool)]) -> Vec<String> {
    let set = match deploy_command_parameters(guide) {
        Ok(set) => set,
        Err(e) => return vec![e],
    };
    let mut drift = Vec::new();
    for (name, required) in params {
        if *required && !set.contains(name) {
            drift.push(format!("required parameter {name} is missing from the guide's sam deploy"));
        }
    }
    for name in &set {
        if !params.iter().any(|(p, _)| p == name) {
            drift.push(format!("the guide sets {name}, which template.yaml does not have"));
        }
        if set.iter().filter(|n| *n == name).count() > 1 {
            drift.push(format!("the guide sets {name} twice"));
        }
    }
    drift
}

#[test]
fn the_deploy_guide_s_sam_deploy_sets_every_required_parameter_and_only_template_parameters() {
    let guide = std::fs::read_to_string(root().join("docs/deploying.md")).expect("docs/deploying.md");
    let params = template_parameters();
    assert!(params.len() > 20 && params.iter().any(|(p, r)| p == "OidcIssuer" && *r), "{params:?}");
    let drift = deploy_drift(&guide, &params);
    assert!(drift.is_empty(), "docs/deploying.md has drifted from template.yaml: {drift:#?}");

    // The check fails when the guide drifts: a required parameter dropped,
    // and a name the template does not have.
    let dropped = guide.replacen("    OidcIssuer=", "    # OidcIssuer=", 1).replacen("OidcIssuer=", "Removed=", 1);
    let drift = deploy_drift(&dropped, &params);
    assert!(drift.iter().any(|d| d.contains("required parameter OidcIssuer is missing")), "{drift:?}");
    assert!(drift.iter().any(|d| d.contains("sets Removed, which template.yaml does not have")), "{drift:?}");
}

/// Every text of docs/ at once.
fn all_docs() -> String {
    documents().into_iter().filter(|(p, _)| p.starts_with(root().join("docs"))).map(|(_, t)| t).collect()
}

/// The stable error codes the functions and the CLI give: every string a
/// `fn code(&self)` returns, every `code: "..."` a CLI error is built with,
/// and every `Failure::new("...")` a handler answers with.
fn error_codes() -> std::collections::BTreeSet<String> {
    let mut codes = std::collections::BTreeSet::new();
    let mut files = Vec::new();
    let mut stack = vec![root().join("functions")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() && !["tests", "target", "benches"].contains(&name.as_str()) {
                stack.push(path);
            } else if name.ends_with(".rs") {
                files.push(path);
            }
        }
    }
    let snake = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    for path in files {
        let source = std::fs::read_to_string(&path).unwrap();
        let source = source.split("#[cfg(test)]").next().unwrap_or_default();
        let mut rest = source;
        while let Some(at) = rest.find("fn code(&self)") {
            let body = &rest[at..];
            let open = body.find('{').unwrap_or(0);
            let (mut depth, mut end) = (0, open);
            for (i, c) in body[open..].char_indices() {
                depth += match c {
                    '{' => 1,
                    '}' => -1,
                    _ => 0,
                };
                if depth == 0 {
                    end = open + i;
                    break;
                }
            }
            for literal in body[open..end].split('"').skip(1).step_by(2) {
                if snake(literal) && literal.contains('_') {
                    codes.insert(literal.to_string());
                }
            }
            rest = &body[end.max(1)..];
        }
        for piece in source.split("code: \"").chain(source.split("Failure::new(\"").skip(1)).skip(1) {
            let literal = piece.split('"').next().unwrap_or_default();
            if snake(literal) {
                codes.insert(literal.to_string());
            }
        }
    }
    codes
}

#[test]
fn every_error_code_and_every_template_setting_is_in_docs() {
    let docs = all_docs();
    let codes = error_codes();
    assert!(codes.len() > 50 && codes.contains("credentials_missing") && codes.contains("key_disabled"), "{codes:?}");
    let missing: Vec<&String> = codes.iter().filter(|c| !docs.contains(&format!("`{c}`"))).collect();
    assert!(missing.is_empty(), "error codes no page of docs/ names (in backticks): {missing:?}");

    let params = template_parameters();
    let missing: Vec<&String> = params.iter().map(|(p, _)| p).filter(|p| !docs.contains(&format!("`{p}`"))).collect();
    assert!(missing.is_empty(), "template parameters no page of docs/ names: {missing:?}");

    let template = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let settings: std::collections::BTreeSet<&str> = template
        .lines()
        .filter(|l| l.starts_with("        ") && !l.trim_start().starts_with('#'))
        .filter_map(|l| l.trim_start().split_once(": ").map(|(name, _)| name))
        .filter(|n| n.len() > 2 && n.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .collect();
    assert!(settings.contains("RECORDING_KEYS") && settings.contains("PLAYBACK_ACCESS"), "{settings:?}");
    let missing: Vec<&&str> = settings.iter().filter(|s| !docs.contains(&format!("`{s}`"))).collect();
    assert!(missing.is_empty(), "function settings no page of docs/ names: {missing:?}");
}
