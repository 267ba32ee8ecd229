namespace ActorQueue.Cli.Commands;

/// <summary>The command's help text and its usage-error exit.</summary>
internal static class Usage
{
    /// <summary>The exit status for a usage error.</summary>
    public const int UsageErrorExitCode = 255;

    private const string Text = """
        actorqueue — a parallel job runner and work scheduler on Akka.NET

        Usage:
          actorqueue run [FILE|-] [options]   run one shell command per input line (or JSONL jobs), in parallel
          actorqueue node --seed HOST:PORT    a worker node: joins a 'run --cluster' coordinator and runs its jobs
          actorqueue cert ca|node ...         create a cluster's private CA and its nodes' certificates
          actorqueue demo                     the scheduler demo: a limiter and a work queue, shown live
          actorqueue --help                   this text

        Run options:
          -j, --jobs N          run at most N jobs at once (default: the processor count)
          --max-queued N        read at most N jobs ahead of the running ones (default: 2 x jobs, at least 16);
                                input is read lazily, so a huge input runs in bounded memory
          --limit TAG=N         a named limiter: jobs tagged TAG also need one of its N slots (repeatable)
          --retries N           retry a failed job up to N times, with backoff from 100 ms doubling to 5 s
          --timeout DURATION    kill a job's whole process group after DURATION (500ms, 30s, 2m, 1h; 1ms to 1193h)
          --halt-on-failure     after the first failure start no new jobs; running jobs finish
          --tag                 prefix every output line with the job's id and a tab
          -q, --quiet           no progress and no summary
          --jsonl               input lines are JSON objects {"id", "cmd", "tags", "timeout", "retries", "env"}
          --joblog FILE         record finished jobs in GNU parallel's joblog format
          --resume              skip the jobs FILE of --joblog records as finished, and append to it (a last
                                record a crash cut short is dropped, so that job runs again)
          --log FILE            write structured logs (Serilog compact JSON): one event per job, plus the
                                queue's and limiters' own events

        Cluster options (run):
          --cluster             distribute jobs to worker nodes instead of running them here; -j bounds the jobs in
                                flight across the cluster; joblog, --resume, --retries and --limit work as usual
                                (the joblog's Host column names the node that ran each job)
          --listen HOST:PORT    where the coordinator listens for worker nodes (loopback unless --allow-remote)
          --min-nodes N         wait for N worker nodes before the first job starts (default 1)
          --allow-remote        allow a non-loopback --listen (nodes on other machines)

        Node options (node):
          --seed HOST:PORT      the coordinator's --listen address
          --listen HOST:PORT    where this node listens (default: a free loopback port)
          -j, --jobs N          run at most N jobs at once on this node (default: the processor count)
          --allow-remote        allow a non-loopback --listen

        Cluster certificates (run --cluster and node need one of these):
          --cert-dir DIR        DIR/node.pfx (this node's certificate and key) and DIR/ca.crt (the cluster CA), as
                                written by 'actorqueue cert node'; peers must hold a certificate of that CA
          --cert FILE --ca FILE the same as two files: a PKCS#12 certificate with its key, and PEM CA certificate(s)
          --insecure-loopback   INSECURE, for development: no TLS and no authentication, loopback only; any process
                                on this host can then join the cluster and run commands on its worker nodes
        A member of the cluster can run any command on its worker nodes and read every job: see docs/SECURITY.md.

        Certificates (cert):
          cert ca --out DIR [--name NAME] [--days N]
                                a private CA for one cluster: DIR/ca.crt, and DIR/ca.key (keep it off the nodes)
          cert node --ca DIR --name NAME --out DIR [--days N]
                                a node certificate from that CA: DIR/node.pfx, DIR/node.crt and DIR/ca.crt
        Private keys are written mode 600: ca.key encrypted with $ACTORQUEUE_CA_PASSWORD and node.pfx with
        $ACTORQUEUE_CERT_PASSWORD when set (cert node reads ca.key with the first; run and node read node.pfx with the
        second), so nodes never need the CA's password.

        A node serves until the coordinator leaves the cluster; Ctrl-C makes it leave, and its running jobs run
        again on another node (at-least-once).

        Each job's stdout and stderr are printed whole when it ends, never interleaved, byte for byte (past 64 KiB a
        job's output waits in a temporary file, not in memory). Jobs run in sessions of their own (setsid), so a
        terminal's Ctrl-C reaches only actorqueue. Ctrl-C once, SIGTERM or SIGHUP: no new jobs start and running jobs
        finish (the joblog stays complete, so --resume continues where the run stopped); Ctrl-C again: running jobs'
        process groups are killed (they are not logged, so --resume runs them again).

        Exit status: 0 when every job succeeded; else the number of failed jobs, at most 101 (a bad input line, a job
        that could not start and a job whose output could not be written count as failed); 255 for usage errors.

        Examples:
          dotnet run --project src/Cli -- run examples/jobs.txt -j 4 --retries 1
          seq 1 100 | sed 's/^/echo /' | actorqueue run - -j 8 --joblog run.log
          actorqueue run examples/jobs.jsonl --jsonl -j 4 --limit net=1 --tag
          actorqueue run jobs.txt -j 4 --joblog run.log --resume
          actorqueue cert ca --out ca && actorqueue cert node --ca ca --name coord --out coord \
            && actorqueue cert node --ca ca --name worker1 --out worker1
          actorqueue run jobs.txt --cluster --listen 127.0.0.1:4053 --cert-dir coord -j 8 --joblog run.log
          actorqueue node --seed 127.0.0.1:4053 --cert-dir worker1 -j 4          # on each worker node
        """;

    public static int Print(TextWriter output)
    {
        output.WriteLine(Text);
        return 0;
    }

    public static int Fail(TextWriter error, string problem)
    {
        error.WriteLine($"actorqueue: {problem}; see 'actorqueue --help'");
        return UsageErrorExitCode;
    }
}
