//! Docker's `run` flags for what a container in a VM of its own has no use
//! for: taken, so that a Docker command line is not refused as unknown,
//! and each checked by its parser, which accepts what every hull container
//! is already and refuses the rest in one line that says why.

use clap::Args;

/// The `hull run` and `hull create` flags hull has nothing behind.
#[derive(Args, Debug)]
pub struct ForeignFlags {
    /// Docker Content Trust: hull verifies no image signatures, so only
    /// true (Docker's default) is taken.
    #[arg(long = "disable-content-trust", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true", hide = true, value_parser = content_trust)]
    _content_trust: Option<bool>,

    /// The OCI runtime: every container runs under hull, in a VM.
    #[arg(long = "runtime", value_name = "RUNTIME", hide = true, value_parser = runtime)]
    _runtime: Option<String>,

    /// Isolation technology: only `default` (a VM per container).
    #[arg(long = "isolation", value_name = "MODE", hide = true, value_parser = isolation)]
    _isolation: Option<String>,

    /// Volume driver: only `local`.
    #[arg(long = "volume-driver", value_name = "DRIVER", hide = true, value_parser = volume_driver)]
    _volume_driver: Option<String>,

    /// IPv6 addresses: hull's networks are IPv4 only.
    #[arg(long = "ip6", alias = "link-local-ip", value_name = "ADDRESS", hide = true,
          value_parser = no_ipv6)]
    _ip6: Option<String>,

    /// Deprecated by Docker and ignored, with its warning.
    #[arg(long = "kernel-memory", value_name = "BYTES", hide = true)]
    pub kernel_memory: Option<String>,

    // Host cgroup and block I/O controls: the host controls a container's
    // VM as a whole.
    #[arg(long = "cgroup-parent", value_name = "VALUE", hide = true, value_parser = host_control)]
    _cgroup_parent: Option<String>,
    #[arg(long = "blkio-weight", value_name = "VALUE", hide = true, value_parser = host_control)]
    _blkio_weight: Option<String>,
    #[arg(long = "blkio-weight-device", value_name = "VALUE", hide = true, value_parser = host_control)]
    _blkio_weight_device: Option<String>,
    #[arg(long = "device-read-bps", value_name = "VALUE", hide = true, value_parser = host_control)]
    _device_read_bps: Option<String>,
    #[arg(long = "device-write-bps", value_name = "VALUE", hide = true, value_parser = host_control)]
    _device_write_bps: Option<String>,
    #[arg(long = "device-read-iops", value_name = "VALUE", hide = true, value_parser = host_control)]
    _device_read_iops: Option<String>,
    #[arg(long = "device-write-iops", value_name = "VALUE", hide = true, value_parser = host_control)]
    _device_write_iops: Option<String>,
    #[arg(long = "device-cgroup-rule", value_name = "VALUE", hide = true, value_parser = host_control)]
    _device_cgroup_rule: Option<String>,
    #[arg(long = "cpu-rt-period", value_name = "VALUE", hide = true, value_parser = host_control)]
    _cpu_rt_period: Option<String>,
    #[arg(long = "cpu-rt-runtime", value_name = "VALUE", hide = true, value_parser = host_control)]
    _cpu_rt_runtime: Option<String>,
    #[arg(long = "cpuset-mems", value_name = "VALUE", hide = true, value_parser = host_control)]
    _cpuset_mems: Option<String>,
}

/// What Docker prints for --kernel-memory, which it ignores.
pub const KERNEL_MEMORY_WARNING: &str =
    "WARNING: Specifying a kernel memory limit is deprecated and will be removed in a future release.";

fn content_trust(value: &str) -> Result<bool, String> {
    match value.parse::<bool>() {
        Ok(true) => Ok(true),
        Ok(false) => Err(
            "hull does not verify image signatures (Docker Content Trust); \
                          drop --disable-content-trust=false"
                .into(),
        ),
        Err(_) => Err("true or false".into()),
    }
}

fn runtime(value: &str) -> Result<String, String> {
    Err(format!(
        "every hull container runs in a VM of its own under hull, not under {value}; \
         drop --runtime"
    ))
}

fn isolation(value: &str) -> Result<String, String> {
    match value {
        "default" => Ok(value.to_owned()),
        _ => Err("only 'default' (every container is a VM of its own)".into()),
    }
}

fn volume_driver(value: &str) -> Result<String, String> {
    match value {
        "local" => Ok(value.to_owned()),
        _ => Err("hull's volumes are local: only 'local'".into()),
    }
}

fn no_ipv6(_: &str) -> Result<String, String> {
    Err("hull's networks are IPv4 only; drop the IPv6 address".into())
}

fn host_control(_: &str) -> Result<String, String> {
    Err(
        "hull controls a container's VM as a whole on the host (--cpus, --memory, \
         --cpuset-cpus, --pids-limit): drop this flag"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        flags: ForeignFlags,
    }

    fn parse(words: &[&str]) -> Result<Cli, String> {
        Cli::try_parse_from(std::iter::once("run").chain(words.iter().copied()))
            .map_err(|err| err.to_string())
    }

    #[test]
    fn what_every_container_is_already_is_taken() {
        for words in [
            &["--disable-content-trust"][..],
            &["--disable-content-trust=true"],
            &["--isolation", "default"],
            &["--volume-driver=local"],
            &["--kernel-memory", "50m"],
        ] {
            assert!(parse(words).is_ok(), "{words:?}");
        }
        let err = parse(&["--disable-content-trust", "busybox"]).err();
        // Not its value: the image, as the word after Docker's bool flag.
        assert!(err.is_some_and(|err| err.contains("unexpected argument 'busybox'")));
    }

    #[test]
    fn the_rest_is_refused_saying_why() {
        for (words, why) in [
            (&["--disable-content-trust=false"][..], "image signatures"),
            (&["--runtime", "runsc"], "not under runsc"),
            (&["--isolation=hyperv"], "only 'default'"),
            (&["--volume-driver", "nfs"], "only 'local'"),
            (&["--ip6", "fd00::2"], "IPv4 only"),
            (&["--link-local-ip", "169.254.1.1"], "IPv4 only"),
            (
                &["--blkio-weight", "300"],
                "'--blkio-weight <VALUE>': hull controls",
            ),
            (&["--cgroup-parent=/x"], "drop this flag"),
            (&["--device-read-bps", "/dev/sda:1mb"], "drop this flag"),
        ] {
            let err = parse(words).err().unwrap_or_default();
            assert!(err.contains(why), "{words:?}: {err}");
        }
    }
}
