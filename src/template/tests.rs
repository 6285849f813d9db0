use super::*;

/// Renders with `f:arg` as every action's value.
fn fill(input: &str) -> String {
    let pieces = parse(input.as_bytes()).unwrap_or_else(|e| panic!("{input:?}: {e:?}"));
    String::from_utf8(render(input.as_bytes(), &pieces, |a| {
        format!("[{}:{}]", a.function, a.argument)
    }))
    .unwrap()
}

fn errors(input: &str) -> Vec<(usize, usize, String)> {
    parse(input.as_bytes())
        .unwrap_err()
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
