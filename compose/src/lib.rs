//! Compose for hull: multi-container applications from compose files,
//! each container in its own microVM.
//!
//! [`load`] reads a project as Compose v2 does: its files found upwards
//! from the working directory (or given), `.env` read, variables
//! interpolated, several files merged by the compose-spec's rules, the
//! result typed ([`model`]), named and validated. Keys hull does not know
//! become warnings; a bad file is an [`Error::Config`] naming the file, the
//! path in it and the reason.
//!
//! The operations (`up`, `down`, `ps`, ...) work on a [`Project`] through
//! `hull_runtime`: they print nothing, and report what they do as events
//! and report structs for a front end to show.

#![deny(missing_docs)]

mod canonical;
mod dotenv;
mod emit;
mod error;
mod extends;
mod files;
mod from_resources;
mod graph;
mod include;
mod interpolate;
mod labels;
mod load;
mod merge;
mod merge_keys;
pub mod model;
mod ops;
mod path;
mod plan;
mod project;
mod project_name;
mod relative;
mod render;
mod validate;

pub use error::{Error, Result};
pub use files::{listed as listed_files, STDIN_FILE};
pub use from_resources::project_from_resources;
pub use load::{load, LoadOptions};
pub use ops::{
    follow, is_oneoff, list_projects, number_of, project_containers, service_of, Action, Compose,
    ContainerImage, DownOptions, Event, Events, ImageNeed, ImageRemoval, Kind, LogLine,
    ProjectSummary, RemoveReport, RunEnd, RunOptions, ServiceImages, UpOptions, UpReport,
};
pub use plan::{
    config_hash, container_name, run_volume, service_mounts, service_publish, ContainerPlan,
    NetworkJoin, Replica, ServiceImage,
};
pub use project::{Project, DEFAULT_NETWORK};
pub use render::config as render_config;
