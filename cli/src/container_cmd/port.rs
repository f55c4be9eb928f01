//! `hull port`: a container's published ports.

use anyhow::{bail, Result};
use clap::Args;
use hull_runtime::Runtime;

#[derive(Args)]
pub struct PortArgs {
    /// Container name or ID.
    container: String,
    /// Only this container port: PORT or PORT/PROTOCOL.
    #[arg(value_name = "PORT[/PROTOCOL]")]
    port: Option<String>,
}

pub fn port(args: PortArgs, runtime: &Runtime) -> Result<u8> {
    let container = runtime.inspect(&args.container)?;
    let wanted = args.port.as_deref().map(|port| match port.contains('/') {
        true => port.to_owned(),
        false => format!("{port}/tcp"),
    });
    let mut found = false;
    for mapping in &container.config.boot.network.ports {
        let side = mapping.container_side();
        match &wanted {
            Some(wanted) if *wanted == side => {
                println!("{}:{}", mapping.host_ip, mapping.host_port);
            }
            Some(_) => continue,
            None => println!("{side} -> {}:{}", mapping.host_ip, mapping.host_port),
        }
        found = true;
    }
    if let (Some(wanted), false) = (&wanted, found) {
        bail!("no public port {wanted} published for {}", container.name());
    }
    Ok(0)
}
