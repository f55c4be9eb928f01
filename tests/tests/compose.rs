//! `hull compose` end to end, typed in this host's shell as a Docker
//! Compose user types it (the VMs in the hull machine): a two-service app
//! (an HTTP front end, built from a Dockerfile with a build argument, whose
//! CGI reads a counter from a second service by name) with `depends_on:
//! condition: service_healthy`, a named volume, a `frontend` network, a
//! published port, an `env_file` and a file secret; brought up,
//! listed, read, exec'd into, changed and brought up again, taken down and
//! up again with its volume, and down with `-v` leaving nothing, its image
//! pushed; then a service scaled to three with `up --wait --scale`, files
//! copied into and out of its containers.

use hull_e2e::registry::{free_port, Registry};
use hull_e2e::script::{facts, on_this_host};
use hull_e2e::{assert_clean, Hull};

#[test]
fn a_two_service_app_goes_up_changes_and_comes_down() {
    let hull = Hull::new();
    let registry = Registry::start();
    let script = format!(
        "port={}\nregistry={}\n{SCRIPT}",
        free_port(),
        registry.host()
    );
    let output = on_this_host(&hull, &script);
    let fact = |key| facts(&output, key);

    // `up -d`: db healthy before web starts; resources named and labelled
    // as Compose v2 names them.
    assert_eq!(fact("up"), ["0"], "{output}");
    // web's image built by `up` (its RUN step in a VM), named as Compose
    // v2 names it.
    assert_eq!(fact("built"), ["built-in-a-vm app-web"], "{output}");
    assert_eq!(fact("order"), ["db-healthy-before-web-started"], "{output}");
    assert_eq!(
        fact("ps"),
        ["app-db-1 db running healthy|app-web-1 web running"],
        "{output}"
    );
    assert_eq!(fact("networks"), ["app_backend app_frontend"], "{output}");
    assert_eq!(fact("volume"), ["app_data app data"], "{output}");
    assert_eq!(fact("labels"), ["app web 1 False"], "{output}");
    // The published port from this host; web reaches db by its service
    // name; the env_file's variable; `port`, `logs`, `config`, `ls`.
    assert_eq!(fact("http"), ["count=0"], "{output}");
    assert_eq!(fact("by-name"), ["count=7"], "{output}");
    assert_eq!(fact("env-file"), ["from the env file"], "{output}");
    // The file secret, mounted read-only at /run/secrets/<name>.
    assert_eq!(fact("secret"), ["s3cret"], "{output}");
    assert_eq!(
        fact("port"),
        [format!("0.0.0.0:{}", port_of(&output))],
        "{output}"
    );
    assert_eq!(fact("logs"), ["db-1 | db ready"], "{output}");
    assert_eq!(fact("config"), ["db web|app"], "{output}");
    assert_eq!(fact("ls"), ["app running(2)"], "{output}");
    // JSON lists as Compose prints them: one array.
    assert_eq!(fact("json-lists"), ["1 2"], "{output}");
    // `-f -`: the file on stdin, the working directory the project's, in
    // the hull machine too.
    assert_eq!(fact("stdin-file"), ["db web|db web"], "{output}");
    // `up` again: nothing changed, nothing remade; a changed service is
    // remade alone.
    assert_eq!(fact("again"), ["Running Running"], "{output}");
    assert_eq!(fact("changed"), ["web-recreated db-kept"], "{output}");
    assert_eq!(fact("changed-env"), ["2"], "{output}");
    // The image's VOLUME goes with the service across a recreate, not
    // left behind for a fresh one.
    assert_eq!(fact("anonymous-kept"), ["kept 0"], "{output}");
    // `down` keeps the volume, `up` finds the count again; `down -v`
    // leaves no container, network or volume.
    // By name alone (no file here), as Compose v2 finds a project.
    assert_eq!(fact("by-project-name"), ["db web"], "{output}");
    assert_eq!(fact("down"), ["0 0 1"], "{output}");
    assert_eq!(fact("persisted"), ["count=7"], "{output}");
    assert_eq!(fact("down-v"), ["0 0 0"], "{output}");
    assert_eq!(fact("by-project-name-gone"), ["0 1"], "{output}");
    // `compose events` followed it all from this host, though the
    // containers ran in the hull machine.
    let events = fact("events");
    for wanted in [
        "create web",
        "start web",
        "health_status: healthy db",
        "die web",
        "destroy web",
    ] {
        assert!(
            events[0].split('|').any(|e| e == wanted),
            "{wanted}: {output}"
        );
    }
    // `compose build --build-arg` over the service's `args:`.
    assert_eq!(fact("build-arg"), ["0 from-the-command-line"], "{output}");
    // `compose push` sends the built image named by `image:` (and not
    // db's, which has no build:), which pulls back.
    assert_eq!(
        fact("pushed"),
        [format!("{}/me/web:v1 0", registry.host())],
        "{output}"
    );
    // A service scaled past its deploy.replicas with `up --wait`: three
    // containers, three distinct hostnames; `down` removes them all.
    // `create` makes deploy.replicas containers, started by `up` later;
    // `pause`/`unpause` freeze and thaw them all.
    assert_eq!(fact("created"), ["2 created"], "{output}");
    assert_eq!(fact("scaled-up"), ["0"], "{output}");
    assert_eq!(fact("paused"), ["paused"], "{output}");
    assert_eq!(
        fact("unpaused"),
        [format!("running {}", env!("CARGO_PKG_VERSION"))],
        "{output}"
    );
    assert_eq!(fact("scaled"), ["3 3"], "{output}");
    // `compose cp` into every replica (as Compose does without --index),
    // out of one by --index, and a tar stream from this host's stdin.
    assert_eq!(fact("cp-all"), ["3 payload"], "{output}");
    assert_eq!(fact("cp-out"), ["same"], "{output}");
    assert_eq!(fact("cp-tar"), ["payload"], "{output}");
    // `compose scale` takes the service down to two: the last replica goes.
    assert_eq!(
        fact("scale"),
        ["0 2 scaled-echo-1,scaled-echo-2"],
        "{output}"
    );
    // Out of a stopped replica, as Compose copies.
    assert_eq!(fact("cp-stopped"), ["0 payload"], "{output}");
    // A one-off run: Docker's -it taken, -v relative to the project, its
    // exit code; listed by ps -a (not ps), removed by down.
    assert_eq!(fact("run"), ["4 ran 1 0 1"], "{output}");
    assert_eq!(fact("run-bad-volume"), ["1 1"], "{output}");
    assert_eq!(fact("scaled-down"), ["0 0"], "{output}");
    // A CI run: the tests service's exit stops the others and is up's
    // exit code; the app's output is not printed (--no-attach), a service
    // that logs nothing still ends the run; the tests' legacy link to the
    // app is an alias in its /etc/hosts (and a dependency, started first).
    assert_eq!(fact("ci"), ["3 1"], "{output}");
    assert_eq!(
        fact("ci-out"),
        ["tests-1 | 1|tests-1 exited with code 3 1"],
        "{output}"
    );
    assert_eq!(
        fact("ci-ps"),
        ["app exited|quiet exited|tests exited"],
        "{output}"
    );
    // `attach` joins a service's process: its output, its exit code.
    assert_eq!(fact("attach"), ["4 talked"], "{output}");
    // `wait --down-project`: the job's exit, printed and the exit code,
    // takes the project down.
    assert_eq!(fact("wait"), ["5 1 0"], "{output}");
    // Bad input: one line each, with Compose's exit codes (1; 15 for a
    // file that cannot be used, 14 for none, 16 for a bad command line).
    assert_eq!(fact("no-service"), ["1 1"], "{output}");
    assert_eq!(fact("cycle"), ["15 1"], "{output}");
    assert_eq!(fact("no-file"), ["14 1"], "{output}");
    assert_eq!(fact("bad-flag"), ["16"], "{output}");
    assert_clean(&hull);
}

/// The port the script published.
fn port_of(output: &str) -> String {
    facts(output, "published")[0].to_owned()
}

const SCRIPT: &str = r#"
work=$(mktemp -d)
tar -C $R -cf $work/bb.tar . && $h import $work/bb.tar bb:1 >/dev/null
echo "published=$port"
mkdir -p $work/app/www/cgi-bin && cd $work/app
cat > www/cgi-bin/count <<'CGI'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
echo "count=$(wget -q -O - http://db:6379/count)"
CGI
chmod 755 www/cgi-bin/count
echo 'GREETING=from the env file' > web.env
cat > compose.yaml <<YAML
services:
  web:
    build:
      context: .
      args: {MARK: built-in-a-vm}
    command: httpd -f -p 80 -h /www
    env_file: web.env
    ports: ["$port:80"]
    networks: [frontend, backend]
    volumes: ["./www:/www:ro"]
    secrets: [token]
    depends_on:
      db: {condition: service_healthy}
  db:
    image: bb:1
    command: sh -c 'test -e /data/count || echo 0 > /data/count; sleep 2; echo db ready; exec httpd -f -p 6379 -h /data'
    networks: [backend]
    volumes: [data:/data]
    healthcheck:
      test: wget -q -O /dev/null http://127.0.0.1:6379/count
      interval: 1s
      retries: 60
networks: {frontend: {}, backend: {}}
volumes: {data: {}}
secrets: {token: {file: ./token.txt}}
YAML
echo s3cret > token.txt
printf 'FROM bb:1\nARG MARK\nRUN echo "$MARK" > /built\nVOLUME /state\n' > Dockerfile

$h compose events --json > $work/events.json & events=$!
sleep 1
$h compose up -d 2>$work/up.err; echo "up=$?"
echo "built=$($h compose exec -T web cat /built) $($h images --format '{{.Repository}}' | grep '^app-web$')"
healthy=$(grep -n 'app-db-1 *Healthy' $work/up.err | cut -d: -f1)
started=$(grep -n 'app-web-1 *Started' $work/up.err | cut -d: -f1)
[ -n "$healthy" ] && [ -n "$started" ] && [ "$healthy" -lt "$started" ] && echo "order=db-healthy-before-web-started"
echo "ps=$($h compose ps --format '{{.Name}} {{.Service}} {{.State}} {{.Health}}' | sed 's/ *$//' | paste -sd '|')"
echo "networks=$($h network ls --format '{{.Name}}' | grep '^app_' | sort | paste -sd ' ')"
echo "volume=$($h volume ls -q | grep '^app_') $($h volume inspect -f '{{index .Labels "com.docker.compose.project"}} {{index .Labels "com.docker.compose.volume"}}' app_data)"
echo "labels=$($h inspect -f '{{index .Config.Labels "com.docker.compose.project"}} {{index .Config.Labels "com.docker.compose.service"}} {{index .Config.Labels "com.docker.compose.container-number"}} {{index .Config.Labels "com.docker.compose.oneoff"}}' app-web-1)"
wait_for "wget -q -O /dev/null http://127.0.0.1:$port/cgi-bin/count 2>/dev/null"
echo "http=$(wget -q -O - http://127.0.0.1:$port/cgi-bin/count)"
$h compose exec -T db sh -c 'echo 7 > /data/count'
echo "by-name=$($h compose exec -T web wget -q -O - http://localhost/cgi-bin/count)"
echo "env-file=$($h compose exec -T web sh -c 'echo $GREETING')"
echo "secret=$($h compose exec -T web cat /run/secrets/token)"
echo "port=$($h compose port web 80)"
echo "logs=$($h compose logs db | grep 'db ready')"
echo "config=$($h compose config --services | paste -sd ' ')|$($h compose config | sed -n 's/^name: //p')"
echo "ls=$($h compose ls --format '{{.Name}} {{.Status}}')"
echo "json-lists=$($h compose ls --format json | grep -c '^\[{.*"Name":"app".*}\]$') $($h compose images --format json | grep -o '"ContainerName"' | wc -l)"
echo "stdin-file=$(cat compose.yaml | $h compose -f - ps --format '{{.Service}}' | sort | paste -sd ' ')|$(cat compose.yaml | $h compose -f - config --services | sort | paste -sd ' ')"

$h compose exec -T web sh -c 'echo kept > /state/f'
volumes=$($h volume ls -q | wc -l)
$h compose up -d 2>$work/again.err
echo "again=$(grep -o 'app-db-1 *Running' $work/again.err | awk '{print $2}') $(grep -o 'app-web-1 *Running' $work/again.err | awk '{print $2}')"
sed -i 's/    env_file: web.env/    env_file: web.env\n    environment: {VERSION: 2}/' compose.yaml
$h compose up -d 2>$work/changed.err
web=$(grep -q 'app-web-1 *Recreate' $work/changed.err && echo web-recreated)
db=$(grep -q 'app-db-1 *Running' $work/changed.err && echo db-kept)
echo "changed=$web $db"
echo "changed-env=$($h compose exec -T web sh -c 'echo $VERSION')"
echo "anonymous-kept=$($h compose exec -T web cat /state/f) $(($($h volume ls -q | wc -l) - volumes))"

echo "by-project-name=$(cd / && $h compose -p app ps --format '{{.Service}}' | sort | paste -sd ' ')"
(cd / && $h compose -p app down 2>/dev/null)
echo "down=$($h ps -aq | wc -l) $($h network ls --format '{{.Name}}' | grep -c '^app_') $($h volume ls -q | grep -c '^app_data$')"
$h compose up -d 2>/dev/null
wait_for "wget -q -O /dev/null http://127.0.0.1:$port/cgi-bin/count 2>/dev/null"
echo "persisted=$(wget -q -O - http://127.0.0.1:$port/cgi-bin/count)"
$h compose down -v 2>/dev/null
(cd / && $h compose -p app down 2>$work/err); echo "by-project-name-gone=$? $(grep -c 'no resource found to remove for project "app"' $work/err)"
echo "down-v=$($h ps -aq | wc -l) $($h network ls --format '{{.Name}}' | grep -c '^app_') $($h volume ls -q | grep -c '^app_')"
sleep 1; kill $events
echo "events=$(sed -n 's/^{"action":"\([^"]*\)".*"service":"\([^"]*\)".*/\1 \2/p' $work/events.json | grep -v '^exec_' | sort -u | paste -sd '|')"
$h compose build --build-arg MARK=from-the-command-line web 2>/dev/null
echo "build-arg=$? $($h run --rm app-web cat /built)"
sed -i "s#^  web:#  web:\n    image: $registry/me/web:v1#" compose.yaml
$h compose build web 2>/dev/null
echo "pushed=$($h compose push -q 2>&1) $($h rmi $registry/me/web:v1 >/dev/null; $h pull $registry/me/web:v1 >/dev/null 2>&1; echo $?)"

mkdir $work/scaled && cd $work/scaled
printf 'services:\n  echo:\n    image: bb:1\n    command: sleep 600\n    deploy: {replicas: 2}\n' > compose.yaml
$h compose create 2>/dev/null
echo "created=$($h compose ps -a --format '{{.State}}' | sort | uniq -c | awk '{print $1, $2}')"
$h compose up -d --wait --scale echo=3 2>/dev/null; echo "scaled-up=$?"
echo "scaled=$($h compose ps -q | wc -l) $(for i in 1 2 3; do $h compose exec -T --index $i echo hostname; done | sort -u | wc -l)"
echo payload > payload.txt
$h compose cp payload.txt echo:/tmp/p.txt
echo "cp-all=$(for i in 1 2 3; do $h compose exec -T --index $i echo cat /tmp/p.txt; done | sort | uniq -c | awk '{print $1, $2}')"
$h compose cp --index 2 echo:/etc/hostname $work/h2
echo "cp-out=$([ "$(cat $work/h2)" = "$($h compose exec -T --index 2 echo hostname)" ] && echo same)"
tar -cf - payload.txt | $h compose cp - echo:/tmp
echo "cp-tar=$($h compose exec -T echo cat /tmp/payload.txt)"
$h compose scale echo=2 2>/dev/null; echo "scale=$? $($h compose ps -q | wc -l) $($h compose ps -a --format '{{.Name}}' | sort | paste -sd, -)"
$h compose pause 2>/dev/null
echo "paused=$($h compose ps --format '{{.State}}' | sort -u)"
$h compose unpause 2>/dev/null
echo "unpaused=$($h compose ps --format '{{.State}}' | sort -u) $($h compose version --short)"
$h compose stop -t 1 2>/dev/null
$h compose cp --index 2 echo:/tmp/payload.txt $work/p2; echo "cp-stopped=$? $(cat $work/p2)"
$h compose run -it -v ./out:/out -l mark=once echo sh -c 'echo ran > /out/file; exit 4' </dev/null >/dev/null 2>&1
echo "run=$? $(cat out/file) $($h compose ps -a --filter status=exited --format '{{.Name}}' | grep -c '^scaled-echo-run-') $($h compose ps -q | wc -l) $($h ps -aq --filter label=mark=once | wc -l)"
$h compose run -v no/such:/x echo true 2>$work/err; echo "run-bad-volume=$? $(wc -l < $work/err)"
$h compose down 2>/dev/null; echo "scaled-down=$? $($h ps -aq | wc -l)"

mkdir $work/ci && cd $work/ci
cat > compose.yaml <<'YAML'
services:
  app: {image: bb:1, command: sleep 600}
  quiet: {image: bb:1, command: sleep 600, logging: {driver: none}}
  tests:
    image: bb:1
    command: sh -c 'grep -c "backend$$" /etc/hosts; exit 3'
    links: [app:backend]
YAML
$h compose up --abort-on-container-exit --exit-code-from tests --no-attach app >$work/ci.out 2>$work/ci.err
echo "ci=$? $(grep -c 'Aborting on container exit' $work/ci.err)"
echo "ci-out=$(sed -n 1,2p $work/ci.out | paste -sd'|') $(grep -c '^quiet-1 exited with code' $work/ci.out)"
echo "ci-ps=$($h compose ps -a --format '{{.Service}} {{.State}}' | sort | paste -sd'|')"
$h compose down 2>/dev/null
cat > $work/wait.yaml <<'YAML'
services:
  job:
    image: bb:1
    command: sh -c 'until [ -e /tmp/go ]; do sleep 0.2; done; exit 5'
  talker:
    image: bb:1
    command: sh -c 'until [ -e /tmp/go ]; do sleep 0.2; done; echo talked; exit 4'
  server: {image: bb:1, command: sleep 600}
YAML
w="$h compose -f $work/wait.yaml -p waiter"
$w up -d 2>/dev/null
(sleep 6; $w exec -T talker touch /tmp/go) &
$w attach --no-stdin talker >$work/attach.out 2>/dev/null; echo "attach=$? $(cat $work/attach.out)"
(sleep 4; $w exec -T job touch /tmp/go) &
$w wait --down-project job >$work/wait.out 2>/dev/null
echo "wait=$? $(grep -c '^container "[0-9a-f]*" exited with status code 5$' $work/wait.out) $($h ps -aq | wc -l)"
cd $work/app

$h compose exec -T nope true 2>$work/err; echo "no-service=$? $(wc -l < $work/err)"
mkdir $work/ring && printf 'services:\n  a: {image: bb:1, depends_on: [b]}\n  b: {image: bb:1, depends_on: [a]}\n' > $work/ring/compose.yaml
$h compose -f $work/ring/compose.yaml config 2>$work/err; echo "cycle=$? $(wc -l < $work/err)"
$h compose -f $work/none.yaml ps 2>$work/err; echo "no-file=$? $(wc -l < $work/err)"
$h compose up --no-such-flag 2>/dev/null; echo "bad-flag=$?"
"#;
