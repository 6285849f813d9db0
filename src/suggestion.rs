//! "Did you mean" as a value: the closest known word, if one is close enough.

use std::fmt;

/// The closest candidate to a misspelt word; displays as
/// ` (did you mean "x"?)`, or as nothing when no candidate is close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion(Option<String>);

impl Suggestion {
    /// A small edit distance (a transposition counts once) or a high
    /// Jaro-Winkler score makes a candidate close enough.
    pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Suggestion {
        let max_edits = (word.chars().count() / 3).max(1);
        let best = candidates
            .into_iter()
            .map(|c| {
                (
                    strsim::osa_distance(word, c),
                    strsim::jaro_winkler(word, c),
                    c,
                )
            })
            .filter(|(edits, jw, _)| *edits <= max_edits || *jw > 0.8)
            .min_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
        Suggestion(best.map(|(_, _, c)| c.to_string()))
    }

    pub fn word(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl fmt::Display for Suggestion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(c) => write!(f, " (did you mean \"{c}\"?)"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let s = |w, c: &[&'static str]| Suggestion::closest(w, c.iter().copied()).to_string();
        assert_eq!(
            s("contxt", &["context", "target"]),
            " (did you mean \"context\"?)"
        );
        assert_eq!(s("zzz", &["context", "target"]), "");
        assert_eq!(s("wbe", &["api", "web"]), " (did you mean \"web\"?)");
        assert_eq!(Suggestion::closest("apj", ["api"]).word(), Some("api"));
    }
}
