//! The OOM killer's bias (`docker run --oom-score-adj N`): written to
//! `/proc/self/oom_score_adj` in the forked process, which its children
//! inherit.

/// A checked `oom_score_adj` value, kept as the text the kernel reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OomScoreAdj {
    text: String,
}

impl OomScoreAdj {
    /// `value`, if within the kernel's -1000 to 1000.
    pub fn new(value: i32) -> Result<OomScoreAdj, String> {
        match (-1000..=1000).contains(&value) {
            true => Ok(OomScoreAdj {
                text: value.to_string(),
            }),
            false => Err(format!("oom_score_adj {value} is outside -1000 to 1000")),
        }
    }

    /// Sets it for the calling process. Lowering it below what the process
    /// had takes CAP_SYS_RESOURCE: set it before the identity changes.
    pub fn apply(&self) -> Result<(), String> {
        std::fs::write("/proc/self/oom_score_adj", &self.text)
            .map_err(|err| format!("setting oom_score_adj {}: {err}", self.text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_the_kernel_takes_are_kept_as_text() {
        assert_eq!(OomScoreAdj::new(-1000).unwrap().text, "-1000");
        assert_eq!(OomScoreAdj::new(500).unwrap().text, "500");
        assert!(OomScoreAdj::new(-1001).is_err());
    }

    #[test]
    fn the_value_reaches_the_kernel() {
        let current = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap();
        let current: i32 = current.trim().parse().unwrap();
        // Raising it takes no privilege (and costs the test nothing).
        let raised = (current + 1).min(1000);
        OomScoreAdj::new(raised).unwrap().apply().unwrap();
        let now = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap();
        assert_eq!(now.trim(), raised.to_string());
        let err = OomScoreAdj { text: "x".into() }.apply().unwrap_err();
        assert!(err.starts_with("setting oom_score_adj x: "), "{err}");
    }
}
