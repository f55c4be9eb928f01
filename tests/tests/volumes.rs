//! Volumes, bind mounts and tmpfs end to end, typed in this host's shell as
//! a Docker user types them (the VMs in the hull machine): an image's
//! `VOLUME` filled from the image with its owners, two containers writing
//! one volume, binds of directories and single files read-write and
//! read-only, a read-only root, and what `volume`, `system df` and the
//! prunes show and remove; then the limits and privileges a container's
//! processes get inside their VM; and bad input, each refused with one line
//! and nothing left behind.

use std::fs;

use hull_e2e::registry::{tar_dir, Registry};
use hull_e2e::script::{facts, on_this_host};
use hull_e2e::{assert_clean, busybox_rootfs, Hull};

const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Pushes `test/db:v1`: busybox with a `/var/lib/db` owned by 999:999
/// (mode 750) holding a seed file, declared a `VOLUME` in its config, as
/// database images declare their data directory.
fn push_database_image(registry: &Registry) -> String {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    fs::create_dir(&root).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", busybox_rootfs().display()))
        .arg(&root)
        .status()
        .expect("run cp");
    assert!(status.success(), "cp -a of the busybox root failed");
    let data = root.join("var/lib/db");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join("seed"), "seeded by the image\n").unwrap();
    for path in [&data, &data.join("seed")] {
        std::os::unix::fs::chown(path, Some(999), Some(999)).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&data, fs::Permissions::from_mode(0o750)).unwrap();
    let (blob, diff) = tar_dir(&root, Some("gzip"));
    let config =
        r#"{"Cmd":["sleep","100000"],"Env":["PATH=/bin:/sbin"],"Volumes":{"/var/lib/db":{}}}"#;
    registry.push_image("test/db", "v1", &[(blob, diff, LAYER_GZIP)], config);
    format!("{}/test/db:v1", registry.host())
}

#[test]
fn volumes_binds_and_tmpfs_as_docker_users_use_them() {
    let registry = Registry::start();
    let image = push_database_image(&registry);
    let hull = Hull::new();
    let script = format!("img={image}\n{}", VOLUME_SCRIPT);
    let output = on_this_host(&hull, &script);
    let fact = |key| facts(&output, key);

    // A named volume made on first use is filled from the image: content,
    // owner and mode of the directory it mounts over.
    assert_eq!(fact("pull"), ["0"], "{output}");
    assert_eq!(
        fact("copied"),
        ["999:999 750 seeded by the image"],
        "{output}"
    );
    // Two running containers share it: each sees the other's writes at
    // once, appends interleave whole.
    assert_eq!(fact("seen-by-w2"), ["from w1"], "{output}");
    assert_eq!(fact("appends"), ["200"], "{output}");
    // What a container wrote and synced is on the host after its VM is
    // killed.
    assert_eq!(fact("durable"), ["same"], "{output}");
    // Hard and symbolic links, rename and chmod, as on the host.
    assert_eq!(fact("fs-ops"), ["from w1|2 600 2 600"], "{output}");
    // Refused while used; the error names the users.
    assert_eq!(fact("rm-in-use"), ["1 1 1"], "{output}");
    // A volume keeps its files across containers, and rm -v leaves a named
    // one.
    assert_eq!(fact("kept"), ["from w1"], "{output}");
    // The image's VOLUME without -v: an anonymous volume, filled too, and
    // removed with `rm -v` (and by --rm); named volumes stay.
    assert_eq!(fact("ps-mounts"), ["data 1"], "{output}");
    assert_eq!(fact("anonymous"), ["1 seeded by the image"], "{output}");
    assert_eq!(fact("anonymous-after-rm"), ["0"], "{output}");
    assert_eq!(
        fact("config-volumes"),
        [r#"{"/var/lib/db":{}}"#],
        "{output}"
    );
    assert_eq!(fact("rm-removed-anonymous"), ["0"], "{output}");
    assert_eq!(fact("nocopy"), ["empty"], "{output}");
    // A subpath of a volume (`volume-subpath`): a directory or a file,
    // links in the volume resolved within it; one not there, or leaving
    // the volume, refused in one line.
    assert_eq!(fact("subpath"), ["deep deep deep"], "{output}");
    assert_eq!(fact("subpath-escape"), ["125 1"], "{output}");
    assert_eq!(
        fact("subpath-bad"),
        [
            r#"125 hull: invalid volume subpath "../x": give a relative path in the volume, without "..""#
        ],
        "{output}"
    );

    // Binds: a host directory read-write (owners kept both ways), made if
    // missing; read-only; a single file, written through in place and its
    // siblings unseen; a symbolic link followed on the host.
    assert_eq!(fact("bind-read"), ["from the host"], "{output}");
    assert_eq!(fact("bind-write"), ["from the guest 1234:1234"], "{output}");
    assert_eq!(fact("bind-made"), ["yes"], "{output}");
    assert_eq!(fact("bind-ro"), ["Read-only file system"], "{output}");
    assert_eq!(fact("file-bind"), ["one|app.conf"], "{output}");
    assert_eq!(fact("file-bind-host"), ["one two"], "{output}");
    assert_eq!(fact("file-bind-siblings"), ["hidden"], "{output}");
    assert_eq!(fact("link-bind"), ["one two"], "{output}");
    assert_eq!(fact("mount-flag"), ["from the host"], "{output}");
    // A VM has room for 16 devices of binds, volumes and networks
    // together, single files of one directory taking one: 14 directories,
    // 10 files of one more and the image's VOLUME without a network run,
    // with one they are refused in one line before anything is made.
    assert_eq!(fact("many-binds"), ["14 10 10"], "{output}");
    assert_eq!(fact("too-many-binds"), ["125 1 1"], "{output}");
    // tmpfs: its size and mode; full at its size.
    assert_eq!(fact("tmpfs"), ["1024 1777 full"], "{output}");
    // A read-only root: writes there fail, to volumes and tmpfs they work.
    assert_eq!(
        fact("read-only-root"),
        ["Read-only file system"],
        "{output}"
    );
    assert_eq!(fact("read-only-volume"), ["ok ok"], "{output}");
    // --volumes-from takes the other container's mounts.
    assert_eq!(
        fact("volumes-from"),
        ["from w1 Read-only file system"],
        "{output}"
    );

    // What volume ls/inspect and system df show.
    assert_eq!(fact("ls"), ["data local"], "{output}");
    assert_eq!(fact("ls-dangling"), ["spare"], "{output}");
    assert_eq!(fact("inspect"), ["local /volumes/data/_data"], "{output}");
    assert_eq!(
        fact("inspect-mounts"),
        ["volume data /var/lib/db true"],
        "{output}"
    );
    assert_eq!(fact("df"), ["Local Volumes 2 1"], "{output}");
    // The volumes' size is Docker's: their files' lengths, hard links once,
    // directories not counted (to the 4 digits shown).
    let du: f64 = fact("du").concat().parse().unwrap_or(-1.0);
    let shown = fact("df-size").concat();
    let (number, unit) = shown.split_at(shown.find(|c: char| c.is_alphabetic()).unwrap_or(0));
    let scale = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        _ => f64::NAN,
    };
    let df = number.parse::<f64>().unwrap_or(f64::NAN) * scale;
    assert!(
        (df - du).abs() <= du * 1e-3,
        "df {shown} vs du {du}: {output}"
    );
    // One user; 1 MiB of blob and a few small files.
    let verbose = fact("df-verbose");
    assert!(
        verbose.len() == 1 && verbose[0].starts_with("1 1.0") && verbose[0].ends_with("MB"),
        "{output}"
    );
    // Prune: anonymous unused volumes; -a the named unused too.
    assert_eq!(fact("prune"), ["2 spare"], "{output}");
    // What a container uses stays: data, and the keeper's anonymous
    // volume for the image's VOLUME; rm -v takes the anonymous one.
    assert_eq!(fact("prune-all"), ["2"], "{output}");
    assert_eq!(fact("volumes-left"), ["1"], "{output}");
    assert_eq!(fact("rm-data"), ["0 0"], "{output}");
    // A volume bound to a host directory (Docker's local driver options):
    // the container reads and writes that directory, which removing the
    // volume leaves as it is. Other options are refused with one line.
    assert_eq!(fact("bound"), ["seed made bind /srv"], "{output}");
    assert_eq!(fact("bound-rm"), ["0 seed made 0"], "{output}");
    assert_eq!(fact("bound-bad"), ["1 1 1"], "{output}");
    assert_clean(&hull);
}

const VOLUME_SCRIPT: &str = r#"
d=$(mktemp -d)
$h pull -q $img >/dev/null; echo "pull=$?"

$h volume create data >/dev/null
$h run --rm -v data:/var/lib/db $img sh -c 'echo "copied=$(stat -c "%u:%g %a" /var/lib/db) $(cat /var/lib/db/seed)"'
$h run -d --name w1 -v data:/var/lib/db $img >/dev/null
$h run -d --name w2 -v data:/var/lib/db $img >/dev/null
echo "ps-mounts=$($h ps --filter name=w2 --format '{{.Mounts}} {{.LocalVolumes}}')"
$h exec w1 sh -c 'echo "from w1" > /var/lib/db/note'
echo "seen-by-w2=$($h exec w2 cat /var/lib/db/note)"
$h exec -d w1 sh -c 'for i in $(seq 100); do echo w1-line >> /var/lib/db/log; done'
$h exec w2 sh -c 'for i in $(seq 100); do echo w2-line >> /var/lib/db/log; done'
wait_for '[ "$($h exec w2 sh -c "grep -c line /var/lib/db/log")" = 200 ]'
echo "appends=$($h exec w1 sh -c 'grep -cx "w[12]-line" /var/lib/db/log')"
sum=$($h exec w1 sh -c 'head -c 1048576 /dev/urandom > /var/lib/db/blob; sync /var/lib/db/blob && sync -d /var/lib/db && md5sum < /var/lib/db/blob')
$h kill w1 >/dev/null
echo "durable=$([ "$(md5sum < $HULL_ROOT/volumes/data/_data/blob)" = "$sum" ] && echo same)"
$h volume rm data 2>$d/err; echo "rm-in-use=$? $(wc -l < $d/err) $(grep -c 'w1, w2' $d/err)"
$h rm -f -v w1 w2 >/dev/null
echo "kept=$($h run --rm -v data:/v $img cat /v/note)"
echo "fs-ops=$($h run --rm -v data:/d $img sh -c 'cd /d && ln note hard && ln -s note soft && mv hard moved && chmod 600 moved && cat soft && stat -c "%h %a" note' | paste -sd'|') $(stat -c '%h %a' $HULL_ROOT/volumes/data/_data/moved)"
$h run --rm -v data:/d $img sh -c 'mkdir -p /d/pg/data && echo deep > /d/pg/data/f && ln -s / /d/escape && ln -s /pg /d/inner'
sub() { $h run --rm --mount source=data,target=/db,volume-subpath=$1 $img cat /db/f 2>&1; }
echo "subpath=$(sub pg/data) $(sub inner/data) $($h run --rm --mount source=data,target=/db,volume-subpath=pg/data/f $img cat /db)"
said=$(sub escape/etc); echo "subpath-escape=$? $(echo "$said" | grep -c 'not in the volume')"
said=$(sub ../x); echo "subpath-bad=$? $said"
$h run --rm -v data:/d $img rm -r /d/pg /d/escape /d/inner

$h run -d --name anon $img >/dev/null
anon=$($h inspect -f '{{range .Mounts}}{{.Name}}{{end}}' anon)
echo "anonymous=$($h volume ls -q | grep -c "^$anon\$") $($h exec anon cat /var/lib/db/seed)"
echo "config-volumes=$($h inspect -f '{{json .Config.Volumes}}' anon)"
$h rm -f -v anon >/dev/null
echo "anonymous-after-rm=$($h volume ls -q | grep -c "^$anon\$")"
$h run --rm $img true
echo "rm-removed-anonymous=$($h volume ls -q | grep -vc '^data$')"
echo "nocopy=$($h run --rm -v fresh:/var/lib/db:nocopy $img sh -c 'ls -A /var/lib/db | wc -l | sed s/^0$/empty/')"
$h volume rm fresh >/dev/null

mkdir $d/src; echo "from the host" > $d/src/a
echo "bind-read=$($h run --rm -v $d/src:/src $img cat /src/a)"
$h run --rm -v $d/src:/src $img sh -c 'echo "from the guest" > /src/b; chown 1234:1234 /src/b'
echo "bind-write=$(cat $d/src/b) $(stat -c %u:%g $d/src/b)"
$h run --rm -v $d/made/here:/x $img true; echo "bind-made=$([ -d $d/made/here ] && echo yes)"
echo "bind-ro=$($h run --rm -v $d/src:/src:ro $img sh -c 'touch /src/c 2>&1' | sed 's/.*: //')"
echo one > $d/app.conf; echo secret > $d/secret
echo "file-bind=$($h run --rm -v $d/app.conf:/etc/app.conf $img sh -c 'cat /etc/app.conf; echo two >> /etc/app.conf; ls /etc | grep app' | paste -sd'|')"
echo "file-bind-host=$(cat $d/app.conf | paste -sd' ')"
echo "file-bind-siblings=$($h run --rm -v $d/app.conf:/etc/app.conf $img sh -c 'find / \( -path /proc -o -path /sys \) -prune -o -name secret -print | wc -l' | sed 's/^0$/hidden/')"
ln -s $d/app.conf $d/link.conf
echo "link-bind=$($h run --rm -v $d/link.conf:/etc/app.conf $img cat /etc/app.conf | paste -sd' ')"
echo "mount-flag=$($h run --rm --mount type=bind,source=$d/src,target=/src,readonly $img cat /src/a)"
many=""; for i in $(seq 14); do mkdir -p $d/many/$i; echo $i > $d/many/$i/f; many="$many -v $d/many/$i:/many/$i"; done
mkdir $d/files; for i in $(seq 10); do echo $i > $d/files/$i.conf; many="$many -v $d/files/$i.conf:/files/$i.conf"; done
echo "many-binds=$($h run --rm --network none $many $img sh -c 'echo $(cat /many/*/f | wc -l) $(cat /files/*.conf | wc -l) $(ls /files | wc -l)')"
$h run --rm $many $img true 2>$d/err; echo "too-many-binds=$? $(wc -l < $d/err) $(grep -c '16 directories and 1 network' $d/err)"
echo "tmpfs=$($h run --rm --tmpfs /scratch:size=1m $img sh -c 'echo $(df -k /scratch | awk "NR==2 {print \$2}") $(stat -c %a /scratch) $(head -c 2000000 /dev/zero > /scratch/f 2>/dev/null || echo full)')"
echo "read-only-root=$($h run --rm --read-only $img sh -c 'touch /x 2>&1' | sed 's/.*: //')"
echo "read-only-volume=$($h run --rm --read-only -v data:/v --tmpfs /tmp $img sh -c 'touch /v/y && touch /tmp/y && echo ok ok')"
$h create --name holder -v data:/var/lib/db $img >/dev/null
echo "volumes-from=$($h run --rm --volumes-from holder:ro $img sh -c 'cat /var/lib/db/note; touch /var/lib/db/z 2>&1 | sed "s/.*: //"' | paste -sd' ')"

$h volume create spare >/dev/null
echo "ls=$($h volume ls --filter name=dat --format '{{.Name}} {{.Driver}}')"
echo "ls-dangling=$($h volume ls -q --filter dangling=true)"
echo "inspect=$($h volume inspect -f '{{.Driver}} {{.Mountpoint}}' data | sed "s|$HULL_ROOT||")"
echo "inspect-mounts=$($h inspect -f '{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}}{{end}}' holder)"
echo "df=$($h system df --format '{{.Type}} {{.TotalCount}} {{.Active}}' | grep Volumes)"
echo "du=$(find $HULL_ROOT/volumes/*/_data ! -type d -printf '%D %i %s\n' | sort -u | awk '{ s += $3 } END { print s }')"
echo "df-size=$($h system df --format '{{.Type}}|{{.Size}}' | grep Volumes | cut -d'|' -f2)"
echo "df-verbose=$($h system df -v | grep '^data ' | awk '{print $2, $3}')"
$h rm holder >/dev/null
$h create --name keeper -v data:/v $img >/dev/null
$h run -d --name anon2 $img >/dev/null; $h rm -f anon2 >/dev/null
$h run -d --name anon3 $img >/dev/null; $h rm -f anon3 >/dev/null
echo "prune=$($h volume prune -f | grep -c '^[0-9a-f]\{64\}$') $($h volume ls -q --filter dangling=true | grep -v '^data$')"
$h volume prune -a -f >/dev/null; echo "prune-all=$($h volume ls -q | wc -l)"
echo "volumes-left=$($h volume ls -q | grep -c '^data$')"
$h rm -v keeper >/dev/null; $h volume rm data >/dev/null; echo "rm-data=$? $(ls $HULL_ROOT/volumes | wc -l)"
mkdir $d/srv; echo seed > $d/srv/seed
$h volume create -o type=none -o o=bind -o device=$d/srv bound >/dev/null
echo "bound=$($h run --rm -v bound:/data $img sh -c 'echo made > /data/new; cat /data/seed') $(cat $d/srv/new) $($h volume inspect -f '{{.Options.o}} {{.Mountpoint}}' bound | sed "s|$d||")"
$h volume rm bound >/dev/null; echo "bound-rm=$? $(cat $d/srv/seed $d/srv/new | paste -sd' ') $(ls $HULL_ROOT/volumes | wc -l)"
$h volume create -o type=tmpfs -o device=tmpfs scratch 2>$d/err; echo "bound-bad=$? $(wc -l < $d/err) $(grep -c -- '--tmpfs' $d/err)"
"#;
