//! The labels Compose v2 puts on what it makes, by which it finds them
//! again: hull's `ps --filter label=`, `volume ls` and Docker tools see
//! the same.

/// The project's name.
pub const PROJECT: &str = "com.docker.compose.project";
/// The service's name.
pub const SERVICE: &str = "com.docker.compose.service";
/// The container's number in its service, from 1.
pub const CONTAINER_NUMBER: &str = "com.docker.compose.container-number";
/// A digest of the service's configuration, to tell when to recreate.
pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
/// `True` for a `run` container, `False` for a service's own.
pub const ONEOFF: &str = "com.docker.compose.oneoff";
/// The project's directory.
pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
/// The project's files, joined by commas.
pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
/// The image's ID the container was made from.
pub const IMAGE: &str = "com.docker.compose.image";
/// A project volume's key in the file.
pub const VOLUME: &str = "com.docker.compose.volume";
/// A project network's key in the file.
pub const NETWORK: &str = "com.docker.compose.network";
