use super::*;

/// Renders with `f:arg` as every action's value.
fn fill(input: &str) -> String {
    let parsed = parse(input.as_bytes());
    assert!(parsed.errors.is_empty(), "{input:?}: {:?}", parsed.errors);
    String::from_utf8(render(input.as_bytes(), &parsed.pieces, |a| {
        format!("[{}:{}]", a.function, a.argument)
    }))
    .unwrap()
}

fn errors(input: &str) -> Vec<(usize, usize, String)> {
    parse(input.as_bytes())
        .errors
        .into_iter()
        .map(|e| (e.line, e.column, e.message))
        .collect()
}

#[test]
fn action_forms() {
    assert_eq!(fill("image: x:<< tag \"api\" >>\n"), "image: x:[tag:api]\n");
    assert_eq!(fill("<<tag \"api\">>"), "[tag:api]");
    assert_eq!(fill("<<   image    \"web\"   >>"), "[image:web]");
    assert_eq!(
        fill("a<< repository \"w\" >>b<< tag \"x\" >>c"),
        "a[repository:w]b[tag:x]c"
    );
}

#[test]
fn passthrough_is_byte_for_byte() {
    for text in [
        "base: &b\n  a: 1\nx:\n  <<: *b\n",
        "<<: [*a, *b]\n",
        "cat <<EOF\nhello\nEOF\n",
        "cat <<-EOF\n\thello\n\tEOF\n",
        "cat <<'EOF'\n$x\nEOF\n",
        "cat << \"EOF\"\n$x\nEOF\n",
        "cat <<< \"$x\"\n",
        "std::cout << \"hi\" << std::endl;\n",
        "puts <<~EOS\n  ruby\nEOS\n",
        "x = 1 << 4\n",
        "{{ .Values.image }} {{- if .x }}{% raw %}\n",
        "summary: \"{{ $labels.instance }} down\"\n",
        "crlf: yes\r\nnext: << tag\r\n",
        "no final newline",
        "日本語 << と «guillemets» ≪x≫\n",
        "<< tag api >>\n",
        "<<tag\"api\">>\n",
        "<< Tag \"api\" >>\n",
        "",
        "\\<<EOF\n",
    ] {
        assert_eq!(fill(text), text, "{text:?}");
    }
}

#[test]
fn crlf_and_non_ascii_around_actions() {
    assert_eq!(
        fill("a: << tag \"x\" >>\r\nb: ü\r\n"),
        "a: [tag:x]\r\nb: ü\r\n"
    );
}

#[test]
fn escaped_action_is_literal() {
    assert_eq!(
        fill("doc: \\<< tag \"api\" >>\n"),
        "doc: << tag \"api\" >>\n"
    );
    assert_eq!(fill("\\<< tga \"api\" >>"), "<< tga \"api\" >>");
}

#[test]
fn unknown_function_is_an_error_with_position() {
    let e = errors("a\nimage: x:<< tga \"api\" >>\n");
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].0, e[0].1), (2, 10));
    assert!(
        e[0].2
            .contains("unknown function \"tga\" (did you mean \"tag\"?)"),
        "{}",
        e[0].2
    );
}

#[test]
fn unterminated_action_is_an_error() {
    let e = errors("x: << tag \"api\"\n");
    assert_eq!((e[0].0, e[0].1), (1, 4));
    assert!(e[0].2.contains("unterminated"), "{}", e[0].2);
    let e = errors("x: << tag \"api\" >\n");
    assert!(e[0].2.contains("unterminated"));
    // The quote must close on the same line for the text to look like an action.
    assert_eq!(fill("x: << tag \"api\n\"\n"), "x: << tag \"api\n\"\n");
}

#[test]
fn all_errors_are_reported() {
    let e = errors("<< tga \"a\" >>\nok\n<< tag \"b\"\n  é << imgae \"c\" >>\n");
    let at: Vec<(usize, usize)> = e.iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(at, [(1, 1), (3, 1), (4, 5)]);
}

#[test]
fn actions_are_kept_beside_errors() {
    let parsed = parse(b"<< tga \"a\" >>\n<< tag \"b\" >>\n");
    assert_eq!(parsed.errors.len(), 1);
    let actions: Vec<&str> = parsed
        .pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Action(a) => Some(a.argument.as_str()),
            Piece::Text(_) => None,
        })
        .collect();
    assert_eq!(actions, ["b"]);
}

#[test]
fn functions_evaluate() {
    let image = crate::registry::Repository::under("r.example/t", "api").with_tag("abc");
    let d = "sha256:00";
    let all: Vec<String> = Function::ALL
        .iter()
        .map(|f| f.evaluate(&image, f.needs_digest().then_some(d)))
        .collect();
    assert_eq!(
        all,
        [
            "abc",
            "r.example/t/api:abc",
            "r.example/t/api",
            "sha256:00",
            "r.example/t/api:abc@sha256:00"
        ]
    );
    assert_eq!(Function::from_name("pinned"), Some(Function::Pinned));
    assert_eq!(Function::from_name("tga"), None);
}
