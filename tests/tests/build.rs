//! `hull build` end to end, typed in this host's shell as a Docker user
//! types it (each `RUN` step's VM in the hull machine): a Flask-style
//! Dockerfile built from a base image the test imports, run with `hull
//! run`; its rebuild all from the cache with the same image ID; a one-byte
//! change re-running from the copy of that file on; a failing `RUN`; a
//! multi-stage build with `ARG`, `--build-arg`, `COPY --from`, `--target`,
//! an unused stage skipped and a cache mount that outlives the build;
//! constructs of real-world Dockerfiles (`RUN --mount=from=`, secrets,
//! here-documents with `#!`, after the command, or copied with quotes,
//! `${V#v}`); `--secret` from a file and from a variable, as a file and as
//! a variable, in no layer, config or history, and a cache hit with
//! another value;
//! `.dockerignore` with exceptions; copies that would leave the context;
//! `history`; the build cache in `system df` and `builder prune`.

use hull_e2e::script::{facts, on_this_host};
use hull_e2e::{assert_clean, Hull};

#[test]
fn dockerfiles_build_into_images_that_run() {
    let hull = Hull::new();
    let output = on_this_host(&hull, BUILD_SCRIPT);
    let fact = |key| facts(&output, key);

    assert_eq!(fact("import"), ["0"], "{output}");
    // The Flask-style build: every instruction applied, a RUN's deletion
    // (a whiteout) and its here-document, the image's config as Docker
    // writes it, and the result run by `hull run` with its CMD.
    assert_eq!(fact("build"), ["0"], "{output}");
    assert_eq!(fact("run-streamed"), ["1"], "{output}");
    assert_eq!(
        fact("app"),
        ["hello from flask==1 on 5000|/app|Dockerfile app.py keep.log requirements.txt size|gone|heredoc"],
        "{output}"
    );
    assert_eq!(
        fact("config"),
        [r#"/app {"5000/tcp":{}} [sh -c /app/start]"#],
        "{output}"
    );
    assert_eq!(fact("env"), ["GREETING=hello PORT=5000"], "{output}");
    // .dockerignore: *.log left out but !keep.log, secret/ left out.
    assert_eq!(fact("ignored"), ["0"], "{output}");
    // history: the RUN that made a layer, with its size; the image's ID on
    // the newest entry.
    assert_eq!(fact("history"), ["1 1"], "{output}");
    // Nothing changed: every step from the cache, the same image.
    assert_eq!(fact("rebuild"), ["0 6 0 same"], "{output}");
    // One byte of app.py changed: the steps before its copy cached, the
    // copy and the RUN after it run again.
    assert_eq!(
        fact("changed"),
        ["0 4 2 hello from flask==1 on 5000 size=15"],
        "{output}"
    );
    // A failing RUN: its command and exit code, exit 1, no image tagged.
    assert_eq!(fact("fail"), ["1 1 1 0"], "{output}");
    // A step that cannot start says why on its last line.
    assert_eq!(fact("fail-user"), ["1 1"], "{output}");
    // Multi-stage: the build argument reaches the RUN, COPY --from the
    // stage's file, the unused stage (which would fail) skipped; the cache
    // mount kept what the first build wrote; neither the cache mount's
    // target nor the directory made to hold it is in the stage's image.
    assert_eq!(fact("multi"), ["0 v2 runs=1"], "{output}");
    assert_eq!(fact("multi-again"), ["0 v3 runs=2"], "{output}");
    assert_eq!(fact("target"), ["0 v3 absent"], "{output}");
    // buildx's --output: the stage's files written into a directory (a CI
    // job's artifacts) and as a tar on stdout, --iidfile the ID printed.
    assert_eq!(
        fact("output"),
        ["0 v3 same-id no-cache-mount v3"],
        "{output}"
    );
    // As BuildKit builds them: bind mounts from another stage (a directory
    // and a file), a secret not given left out, a here-document with #!
    // run as a program from /dev/pipes/, two here-documents after the
    // command given to the shell, ${V#v} in ENV, a COPY here-document's
    // quotes kept as its variables expand.
    assert_eq!(
        fact("real"),
        [
            r#"0 one|./a ./sub/b|no-secret|shebang /dev/pipes/EOF|first|second|server_name "1.2.3"; 1.2.3"#
        ],
        "{output}"
    );
    // --secret from a file: mounted read-only at /run/secrets/tok (root's,
    // 0400) and at a target of its own (uid=1000) and as a variable; the
    // image has neither file nor the stub made to hold it, the saved image
    // (whose layers do hold what the step wrote) not the secret, nor its
    // history or config; no secret file is left under the hull root.
    assert_eq!(
        fact("secret"),
        ["0 400 0|1000 env-ok|absent absent|1 0 0 0|0"],
        "{output}"
    );
    // From a variable, with another value: every step from the cache, the
    // same image (BuildKit keys a secret by id and target); with no cache,
    // the steps run with it.
    assert_eq!(fact("secret-env"), ["0 2 0 same"], "{output}");
    assert_eq!(fact("secret-env-run"), ["0 2"], "{output}");
    // A required secret not given, a missing file, an unset variable, a
    // bad spec: one line each, exit 1, no step run.
    assert_eq!(fact("secret-required"), ["1 1"], "{output}");
    assert_eq!(fact("secret-missing"), ["1 1 1"], "{output}");
    assert_eq!(fact("secret-unset"), ["1 1 1"], "{output}");
    assert_eq!(fact("secret-bad"), ["1 1 1"], "{output}");
    // A path out of the context is refused, naming the path (exit 1, as
    // every failed build); links resolve
    // inside it as BuildKit resolves them: one to a file out of it names
    // that path in the context (missing here), one that climbs out stops at
    // its root.
    assert_eq!(fact("outside"), ["1 1"], "{output}");
    assert_eq!(fact("link-out"), ["1 1 0"], "{output}");
    assert_eq!(fact("link-up"), ["0 inside"], "{output}");
    // ADD of URLs (python3's http.server on this host): into a directory
    // under the URL's name, 0600, root's, with the server's Last-Modified
    // time; --chmod and --checksum; a tar kept whole. Rebuilt: all cached.
    assert_eq!(fact("add-url"), ["0 600 0 hello"], "{output}");
    assert_eq!(fact("add-time"), ["same"], "{output}");
    assert_eq!(fact("add-tar"), ["755 t"], "{output}");
    assert_eq!(fact("add-url-again"), ["0 0"], "{output}");
    // Changed on the server: downloaded again, the step made anew.
    assert_eq!(fact("add-url-changed"), ["0 1 hello again"], "{output}");
    assert_eq!(fact("add-404"), ["1 1"], "{output}");
    assert_eq!(fact("add-checksum"), ["1 1"], "{output}");
    // The bind mount shows the context less what .dockerignore leaves out;
    // WORKDIR made the missing directories as the USER.
    assert_eq!(fact("bind"), ["keep.txt"], "{output}");
    assert_eq!(fact("workdir"), ["1000 1000 1000 0"], "{output}");
    // The build cache in system df, then pruned.
    let df = fact("df");
    assert!(
        df.len() == 1 && !df[0].starts_with("0 ") && !df[0].ends_with(" 0B"),
        "{output}"
    );
    assert_eq!(fact("prune"), ["0 0 0B"], "{output}");
    assert_eq!(
        fact("after-prune"),
        ["hello from flask==1 on 5000"],
        "{output}"
    );
    assert_clean(&hull);
}

const BUILD_SCRIPT: &str = r#"
d=$(mktemp -d)
# How many steps with a layer ran (rather than came from the cache).
ran() { awk '/^#[0-9]+ \[/ { name[$1] = $0 } / DONE / && name[$1] ~ /\] (RUN|COPY|ADD|WORKDIR)/ { n++ } END { print n + 0 }'; }
tar -C $R -c . | $h import - base:1 >/dev/null; echo "import=$?"

mkdir -p $d/app/secret && cd $d/app
echo 'flask==1' > requirements.txt
echo 'print("hello")' > app.py
echo log > debug.log; echo keep > keep.log; echo s > secret/key
printf '*.log\n!keep.log\nsecret/\n' > .dockerignore
cat > start <<'EOF'
#!/bin/sh
echo "$GREETING from $(cat /installed) on $PORT|$(pwd)|$(ls /app | grep -v start | paste -sd' ')|$(test -e /etc/group || echo gone)|$(cat /heredoc)"
EOF
chmod 755 start
cat > Dockerfile <<'EOF'
# syntax=docker/dockerfile:1
FROM base:1
WORKDIR /app
COPY requirements.txt .
RUN cat requirements.txt > /installed && rm /etc/group && echo "installing $(cat /installed)"
RUN <<EOT
echo heredoc > /heredoc
EOT
ADD . /app
RUN echo "size=$(wc -c < app.py)" > /app/size
ENV GREETING=hello PORT=5000
EXPOSE 5000
CMD ["sh", "-c", "/app/start"]
EOF
$h build -t app:1 . > $d/out 2>&1; echo "build=$?"
echo "run-streamed=$(grep -c '^#[0-9]* [0-9.]* installing flask==1$' $d/out)"
echo "app=$($h run --rm app:1)"
echo "config=$($h image inspect -f '{{.Config.WorkingDir}} {{json .Config.ExposedPorts}} {{.Config.Cmd}}' app:1)"
echo "env=$($h image inspect -f '{{range .Config.Env}}{{.}} {{end}}' app:1 | tr ' ' '\n' | grep -E 'GREETING|PORT' | paste -sd' ')"
echo "ignored=$($h run --rm app:1 sh -c 'ls /app/debug.log /app/secret 2>/dev/null | wc -l')"
id=$($h image inspect -f '{{.Id}}' app:1)
echo "history=$($h history --no-trunc --format '{{.CreatedBy}}|{{.Size}}' app:1 | grep -c '^RUN .*installing.*|[1-9][0-9.]*k\?B$') $($h history -q app:1 | head -1 | grep -c '^[0-9a-f]\{12\}$')"

$h build -t app:1 . > $d/out 2>&1; code=$?
echo "rebuild=$code $(grep -c ' CACHED$' $d/out) $(ran < $d/out) $([ "$($h image inspect -f '{{.Id}}' app:1)" = "$id" ] && echo same)"

echo 'print("hellO")' > app.py
$h build -t app:2 . > $d/out 2>&1; code=$?
echo "changed=$code $(grep -c ' CACHED$' $d/out) $(ran < $d/out) $($h run --rm app:2 sh -c '/app/start | cut -d"|" -f1; cat /app/size')" | paste -sd' '

printf 'FROM base:1\nRUN echo before; exit 3\n' > Dockerfile.fail
$h build -f Dockerfile.fail -t fail:1 . > $d/out 2>&1; code=$?
echo "fail=$code $(grep -c '^ERROR: failed to solve: .*process "/bin/sh -c echo before; exit 3" did not complete successfully: exit code: 3$' $d/out) $(grep -c 'before$' $d/out) $($h images --format '{{.Repository}}:{{.Tag}}' | grep -c '^fail:')"
printf 'FROM base:1\nUSER nosuchuser\nRUN id\n' > Dockerfile.user
$h build -q -f Dockerfile.user . > $d/out 2>&1; code=$?
echo "fail-user=$code $(tail -n 1 $d/out | grep -c 'unable to find user nosuchuser')"

mkdir $d/multi && cd $d/multi
cat > Dockerfile <<'EOF'
ARG BASE=base:1
FROM ${BASE} AS builder
ARG VERSION=0
RUN --mount=type=cache,target=/stubs/cache echo "v$VERSION" > /out && echo run >> /stubs/cache/runs && echo "runs=$(wc -l < /stubs/cache/runs)" > /runs
FROM base:1 AS unused
RUN exit 9
FROM base:1
COPY --from=builder /out /runs /
CMD ["sh", "-c", "echo $(cat /out) $(cat /runs)"]
EOF
$h build --build-arg VERSION=2 -t multi:1 . > $d/out 2>&1; code=$?
echo "multi=$code $($h run --rm multi:1)"
$h build --build-arg VERSION=3 -t multi:1 . > $d/out 2>&1; code=$?
echo "multi-again=$code $($h run --rm multi:1)"
$h build --build-arg VERSION=3 --target builder -t multi:builder . > $d/out 2>&1; code=$?
echo "target=$code $($h run --rm multi:builder sh -c 'cat /out; test -e /stubs || echo absent' | paste -sd' ')"
$h buildx build -q --build-arg VERSION=3 --target builder -o type=local,dest=$d/artifacts --iidfile $d/iid . > $d/id 2>/dev/null; code=$?
same=$([ "$(cat $d/iid)" = "$(cat $d/id)" ] && [ "$(cat $d/id)" = "$($h image inspect -f '{{.Id}}' multi:builder)" ] && echo same-id)
echo "output=$code $(cat $d/artifacts/out) $same $(test -e $d/artifacts/stubs || echo no-cache-mount) $($h build -q --build-arg VERSION=3 --target builder -o - . | tar -xO out)"

mkdir $d/real && cd $d/real
cat > Dockerfile <<'DOCKERFILE'
FROM base:1 AS files
RUN mkdir -p /tree/sub && echo one > /tree/a && echo two > /tree/sub/b
FROM base:1
ARG V=v1.2.3
ENV VERSION=${V#v}
RUN --mount=type=bind,from=files,source=/tree,target=/t --mount=from=files,source=/tree/a,target=/one \
    --mount=type=secret,id=token \
    sh -c 'cat /one; cd /t && find . -type f | sort | paste -sd" "; test -e /run/secrets/token || echo no-secret' > /seen
RUN <<EOF
#!/bin/sh -e
echo "shebang $0" > /shebang
EOF
RUN cat <<A > /two && cat <<B >> /two
first
A
second
B
COPY <<EOF /conf
server_name "$VERSION";
EOF
CMD ["sh", "-c", "cat /seen /shebang /two /conf | paste -sd'|'; echo $VERSION"]
DOCKERFILE
$h build -t real:1 . > $d/out 2>&1; code=$?
echo "real=$code $($h run --rm real:1 | paste -sd' ')"
[ $code = 0 ] || cat $d/out >&2

mkdir $d/secrets && cd $d/secrets
# The Dockerfile names the secret's value in capitals only: its history
# holds the lines.
printf s3cret > $d/tok
cat > Dockerfile <<'DOCKERFILE'
FROM base:1
RUN --mount=type=secret,id=tok cat /run/secrets/tok > /dev/null && test "$(tr a-z A-Z < /run/secrets/tok)" = S3CRET && stat -c '%a %u' /run/secrets/tok > /file && echo "mark$((1 + 2))r" > /mark
RUN --mount=type=secret,id=tok,env=TOK --mount=type=secret,id=tok,target=/home/tok,uid=1000 test "$(echo "$TOK" | tr a-z A-Z)" = S3CRET && test "$(tr a-z A-Z < /home/tok)" = S3CRET && echo "$(stat -c %u /home/tok) env-ok" > /env
CMD ["sh", "-c", "cat /file /env | paste -sd'|'; for f in /run/secrets /home/tok; do test -e $f && echo left || echo absent; done | paste -sd' '"]
DOCKERFILE
$h build --secret id=tok,src=$d/tok -t sec:1 . > $d/out 2>&1; code=$?
[ $code = 0 ] || cat $d/out >&2
# How many lines of the saved image's blobs (layers uncompressed) hold $1.
holding() { for b in $d/saved/blobs/sha256/*; do gzip -dcf "$b" | grep -c "$1"; done | awk '{ n += $1 } END { print n + 0 }'; }
$h save -o $d/sec.tar sec:1 && mkdir $d/saved && tar -C $d/saved -xf $d/sec.tar
leaks="$(holding mark3r) $(holding s3cret) $($h history --no-trunc sec:1 | grep -c s3cret) $($h image inspect sec:1 | grep -c s3cret)"
echo "secret=$code $($h run --rm sec:1 | paste -sd'|')|$leaks|$(ls $HULL_ROOT/builder/tmp | grep -c secrets-)"
id=$($h image inspect -f '{{.Id}}' sec:1)
TOKVAR=changed $h build --secret id=tok,env=TOKVAR -t sec:2 . > $d/out 2>&1; code=$?
echo "secret-env=$code $(grep -c ' CACHED$' $d/out) $(ran < $d/out) $([ "$($h image inspect -f '{{.Id}}' sec:2)" = "$id" ] && echo same)"
TOKVAR=s3cret $h build --no-cache --secret id=tok,env=TOKVAR -t sec:3 . > $d/out 2>&1; code=$?
echo "secret-env-run=$code $(ran < $d/out)"
printf 'FROM base:1\nRUN --mount=type=secret,id=npmrc,required echo never\n' > Dockerfile.required
$h build -f Dockerfile.required . > $d/out 2>&1; code=$?
echo "secret-required=$code $(grep -c '^hull: .*RUN --mount=type=secret,id=npmrc,required: secret npmrc was not given: pass it with --secret id=npmrc$' $d/out)"
$h build --secret id=tok,src=$d/missing . > $d/out 2>&1; code=$?
echo "secret-missing=$code $(grep -c "^hull: secret tok: cannot read $d/missing: " $d/out) $(wc -l < $d/out)"
$h build --secret id=tok,env=HULL_UNSET_TOKEN . > $d/out 2>&1; code=$?
echo "secret-unset=$code $(grep -c '^hull: secret tok: the environment variable HULL_UNSET_TOKEN is not set$' $d/out) $(wc -l < $d/out)"
$h build --secret src=$d/tok . > $d/out 2>&1; code=$?
echo "secret-bad=$code $(grep -c "^hull: --secret src=$d/tok: give the secret's id=$" $d/out) $(wc -l < $d/out)"

mkdir $d/escape && cd $d/escape
echo secret > $d/outside
printf 'FROM base:1\nCOPY ../outside /x\n' > Dockerfile
$h build -t escape:1 . 2> $d/err >/dev/null; echo "outside=$? $(grep -c '^hull: .*outside the build context' $d/err)"
ln -s $d/outside link
printf 'FROM base:1\nCOPY link /x\n' > Dockerfile
$h build -t escape:1 . 2> $d/err >/dev/null; echo "link-out=$? $(grep -c '^hull: .*link: no such file or directory in the build context' $d/err) $(grep -c secret $d/err)"
echo inside > outside; mkdir sub; ln -s ../../../outside sub/up
printf 'FROM base:1\nCOPY sub/up /x\nCMD ["cat", "/x"]\n' > Dockerfile
$h build -t escape:2 . 2> $d/err >/dev/null; code=$?
echo "link-up=$code $($h run --rm escape:2)"

mkdir -p $d/www/files $d/tarred $d/web && cd $d/web
echo hello > $d/www/files/hello.txt
echo t > $d/tarred/t && tar -C $d/tarred -cf $d/www/files/tool.tar t
sum=$(sha256sum $d/www/files/tool.tar | cut -d' ' -f1)
python3 -u -m http.server 0 --bind 127.0.0.1 --directory $d/www > $d/http.log 2>&1 &
web=$!
for i in $(seq 100); do grep -q ' port [0-9]' $d/http.log && break; sleep 0.1; done
port=$(sed -n 's/.* port \([0-9]*\).*/\1/p' $d/http.log | head -1)
mkdir ctx && echo k > ctx/keep.txt && echo s > ctx/skip.log
echo 'ctx/*.log' > .dockerignore
cat > Dockerfile <<EOF
FROM base:1
USER 1000
WORKDIR /made/by/user
USER root
ADD http://127.0.0.1:$port/files/hello.txt /dl/
ADD --chmod=755 --checksum=sha256:$sum http://127.0.0.1:$port/files/tool.tar /dl/tool
RUN --mount=type=bind,source=ctx,target=/ctx ls /ctx > /bind
EOF
$h build -t web:1 . > $d/out 2>&1; code=$?
echo "add-url=$code $($h run --rm web:1 sh -c 'stat -c "%a %u" /dl/hello.txt; cat /dl/hello.txt' | paste -sd' ')"
[ "$($h run --rm web:1 stat -c %Y /dl/hello.txt)" = "$(stat -c %Y $d/www/files/hello.txt)" ] && echo "add-time=same"
echo "add-tar=$($h run --rm web:1 sh -c 'stat -c %a /dl/tool; tar -tf /dl/tool' | paste -sd' ')"
$h build -t web:1 . > $d/out 2>&1; code=$?
echo "add-url-again=$code $(ran < $d/out)"
echo 'hello again' > $d/www/files/hello.txt
$h build -t web:2 . > $d/out 2>&1; code=$?
echo "add-url-changed=$code $(awk '/^#[0-9]+ \[/ { name[$1] = $0 } / DONE / && name[$1] ~ /ADD http.*hello/ { n++ } END { print n + 0 }' < $d/out) $($h run --rm web:2 cat /dl/hello.txt)"
echo "bind=$($h run --rm web:1 cat /bind | paste -sd' ')"
echo "workdir=$($h run --rm web:1 stat -c %u /made /made/by /made/by/user /dl | paste -sd' ')"
printf 'FROM base:1\nADD http://127.0.0.1:%s/missing /x\n' $port > Dockerfile.404
$h build -f Dockerfile.404 . > $d/out 2>&1; code=$?
echo "add-404=$code $(grep -c "cannot download http://127.0.0.1:$port/missing: the server answered 404 Not Found" $d/out)"
printf 'FROM base:1\nADD --checksum=sha256:%064d http://127.0.0.1:%s/files/tool.tar /x\n' 0 $port > Dockerfile.sum
$h build -f Dockerfile.sum . > $d/out 2>&1; code=$?
echo "add-checksum=$code $(grep -c 'digest mismatch' $d/out)"
kill $web

echo "df=$($h system df --format '{{.Type}}|{{.TotalCount}} {{.Size}}' | grep 'Build Cache' | cut -d'|' -f2)"
$h builder prune -f >/dev/null; code=$?
echo "prune=$code $($h system df --format '{{.Type}}|{{.TotalCount}} {{.Size}}' | grep 'Build Cache' | cut -d'|' -f2)"
echo "after-prune=$($h run --rm app:2 sh -c '/app/start | cut -d"|" -f1')"
"#;
