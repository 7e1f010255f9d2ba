//! Habits of a command-line tool (#21 point 4): shell completions and man
//! pages generated from the same definitions as --help, tcpdump's -r and
//! -D.

mod common;

use common::*;

#[test]
fn completions_are_generated_for_every_shell() {
    for (shell, mark) in [
        ("bash", "_exflow()"),
        ("zsh", "#compdef exflow"),
        ("fish", "complete -c exflow"),
        ("elvish", "edit:completion:arg-completer[exflow]"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = run(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(mark), "{shell}: no {mark:?}");
        // Every command and a recent option are in it.
        for word in ["analyze", "live", "baseline", "flows", "list-interfaces"] {
            assert!(script.contains(word), "{shell}: no {word}");
        }
    }
    // The bash script is valid bash.
    let p = tmp_path("exflow.bash");
    std::fs::write(&p, run(&["completions", "bash"]).stdout).unwrap();
    let check = std::process::Command::new("bash")
        .args(["-n", path_str(&p)])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let _ = std::fs::remove_file(&p);
    let bad = run(&["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn man_pages_describe_every_command() {
    let out = run(&["man"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.contains(".TH exflow 1"),
        "{}",
        &page[..200.min(page.len())]
    );
    for word in ["analyze", "live", "completions"] {
        assert!(page.contains(word), "no {word}");
    }
    let dir = tmp_path("man-pages");
    let _ = std::fs::remove_dir_all(&dir);
    let out = run(&["man", "--dir", path_str(&dir)]);
    assert!(out.status.success(), "{}", stderr(&out));
    for cmd in ["analyze", "policy", "live", "baseline", "diff", "rules"] {
        let p = dir.join(format!("exflow-{cmd}.1"));
        let page = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(
            page.contains(&format!(".TH exflow-{cmd} 1")),
            "{}",
            p.display()
        );
    }
    let analyze = std::fs::read_to_string(dir.join("exflow-analyze.1")).unwrap();
    assert!(
        analyze.contains("\\-\\-flows"),
        "analyze's page lists --flows"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn read_flag_is_the_same_as_naming_the_capture() {
    let p = shared_captures().join("lab/dyn-drop/client-tap.pcap");
    let named = run(&["analyze", "--format", "json", path_str(&p)]);
    let read = run(&["analyze", "--format", "json", "-r", path_str(&p)]);
    assert_eq!(named.status.code(), read.status.code());
    assert!(!named.stdout.is_empty());
    assert_eq!(named.stdout, read.stdout);
    let none = run(&["analyze", "--format", "json"]);
    assert_eq!(none.status.code(), Some(2), "no capture at all is an error");
}

#[test]
fn live_d_lists_interfaces_as_list_interfaces_does() {
    let long = run(&["live", "--list-interfaces"]);
    let short = run(&["live", "-D"]);
    assert_eq!(
        long.status.code(),
        short.status.code(),
        "{}",
        stderr(&short)
    );
    assert_eq!(long.stdout, short.stdout);
}

/// `--color always` paints the text report and changes nothing else;
/// into a pipe (auto) and with `never` there is no escape at all.
#[test]
fn colour_only_paints() {
    let p = shared_captures().join("lab/dyn-drop/client-tap.pcap");
    let text = |args: &[&str]| {
        let mut all = vec!["analyze", path_str(&p)];
        all.extend_from_slice(args);
        String::from_utf8(run(&all).stdout).unwrap()
    };
    let plain = text(&[]);
    assert!(!plain.contains('\x1b'), "a pipe gets no colour");
    assert_eq!(text(&["--color", "never"]), plain);
    let painted = text(&["--color", "always"]);
    assert!(painted.contains("\x1b[1;31mBLOCKED\x1b[0m"));
    assert!(painted.contains("\x1b[32mworking\x1b[0m"));
    let stripped = painted
        .replace("\x1b[1;31m", "")
        .replace("\x1b[1;33m", "")
        .replace("\x1b[32m", "")
        .replace("\x1b[0m", "");
    assert_eq!(stripped, plain);
    // JSON is never painted.
    let json = text(&["--format", "json", "--color", "always"]);
    assert!(!json.contains('\x1b'));
}

/// On a terminal the text report wraps at the terminal's width (here 96
/// columns, through `script`'s pseudo-terminal) and is in colour; into a
/// pipe it keeps its 120 columns and no colour.
#[test]
fn text_fits_the_terminal_it_is_shown_on() {
    let p = shared_captures().join("lab/dyn-drop/client-tap.pcap");
    let cmd = format!(
        "stty cols 96; {} analyze {}",
        env!("CARGO_BIN_EXE_exflow"),
        path_str(&p)
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env_remove("NO_COLOR")
        .output()
        .expect("script(1) (util-linux) runs the report on a pseudo-terminal");
    assert!(out.status.success() || out.status.code() == Some(1));
    let shown = String::from_utf8(out.stdout).unwrap();
    let plain = shown
        .replace("\x1b[1;31m", "")
        .replace("\x1b[1;33m", "")
        .replace("\x1b[32m", "")
        .replace("\x1b[0m", "");
    let widest = |t: &str| {
        t.lines()
            .map(|l| l.trim_end_matches('\r').chars().count())
            .max()
    };
    assert!(shown.contains("\x1b[1;31mBLOCKED"), "colour on a terminal");
    assert!(widest(&plain).unwrap() <= 96, "{plain}");
    let piped = String::from_utf8(run(&["analyze", path_str(&p)]).stdout).unwrap();
    let w = widest(&piped).unwrap();
    assert!(w > 96 && w <= 120, "a pipe keeps 120 columns: {w}");
}
