//! `ls`: the projects that have containers, from their labels, without
//! their files.

use std::collections::BTreeMap;

use hull_runtime::{Runtime, Status};

use crate::error::Result;
use crate::labels;

/// A project as `compose ls` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectSummary {
    /// Its name.
    pub name: String,
    /// Its containers by state, as Compose words it: `running(2), exited(1)`.
    pub status: String,
    /// Its files, as its containers record them.
    pub config_files: String,
    /// Whether any of its containers runs.
    pub running: bool,
}

/// Every project with containers on `runtime`, by name.
pub fn list_projects(runtime: &Runtime) -> Result<Vec<ProjectSummary>> {
    let mut projects: BTreeMap<String, (BTreeMap<&'static str, usize>, String)> = BTreeMap::new();
    for container in runtime.list()? {
        let labels = &container.config.labels;
        let Some(project) = labels.get(labels::PROJECT) else {
            continue;
        };
        let (counts, files) = projects.entry(project.clone()).or_default();
        let state = match container.state.status {
            Status::Running if container.state.paused => "paused",
            status => status.as_str(),
        };
        *counts.entry(state).or_default() += 1;
        if files.is_empty() {
            files.clone_from(labels.get(labels::CONFIG_FILES).unwrap_or(&String::new()));
        }
    }
    Ok(projects
        .into_iter()
        .map(|(name, (counts, config_files))| ProjectSummary {
            running: counts.contains_key("running"),
            status: counts
                .iter()
                .map(|(state, n)| format!("{state}({n})"))
                .collect::<Vec<_>>()
                .join(", "),
            name,
            config_files,
        })
        .collect())
}
