using System.CommandLine;
using ActorQueue.Cli.Jobs;
using ActorQueue.Cli.Security;
using static ActorQueue.Cli.Commands.CommandLineSyntax;

namespace ActorQueue.Cli.Commands;

/// <summary><c>actorqueue node</c>'s options: a worker node of a <c>run --cluster</c> coordinator.</summary>
internal static class NodeSyntax
{
    public static Command Create(Interrupts interrupts)
    {
        var seed = Text("--seed", "HOST:PORT", "the coordinator's --listen address, spelt as it is there (localhost is not 127.0.0.1 to it: a node whose joins it drops says so and exits 1); HOST is an IP address or a name that resolves here (to an IPv4 address)");
        var listen = Text("--listen", "HOST:PORT", "where this node listens; HOST is an IP address or a name whose last IPv4 address (the one bound) is this machine's, and not 0.0.0.0 or [::]: the coordinator reaches the node at this very address (default: a free loopback port, which only a coordinator on this machine reaches)");
        // At most as many as a local run runs at once: a node registers a worker per job slot up front, and
        // -j 2147483647 ran out of memory (exit 134) once it had joined.
        var jobs = WholeNumber("--jobs", "-j", 1, $"run at most N jobs at once on this node, N up to {JobRun.MaxWorkers} (default: the processor count)",
            Environment.ProcessorCount, maximum: JobRun.MaxWorkers);
        var allowRemote = Flag("--allow-remote", "allow a non-loopback --listen");
        var certificates = new CertificateOptions();
        var node = new Command("node", "a worker node: joins a 'run --cluster' coordinator and runs its jobs") { seed, listen, jobs, allowRemote };
        certificates.AddTo(node);
        node.SetAction((result, _) => NodeCommand.RunAsync(result.GetValue(seed), result.GetValue(listen) ?? "", result.GetValue(jobs),
            result.GetValue(allowRemote), certificates.Bind(result), interrupts));
        return node;
    }
}

/// <summary><c>actorqueue cert ca|node</c>: a cluster's private CA and its nodes' certificates.</summary>
internal static class CertSyntax
{
    public static Command Create()
    {
        var cert = new Command("cert", "create a cluster's private CA and its nodes' certificates")
        {
            Kind("ca", "a private CA for one cluster: DIR/ca.crt, and DIR/ca.key (keep it off the nodes)", issuedByCa: false),
            Kind("node", "a node certificate from that CA: DIR/node.pfx, DIR/node.crt and DIR/ca.crt", issuedByCa: true),
        };
        cert.SetAction(_ => Usage.Fail(Console.Error, "cert needs a subcommand: 'ca' (a cluster's private CA) or 'node' (a node certificate from that CA)"));
        return cert;
    }

    private static Command Kind(string name, string description, bool issuedByCa)
    {
        var options = new List<Option<string>>
        {
            PathText("--out", "DIR", "the directory to write the files to"),
            Text("--name", "NAME", issuedByCa ? "the node's name" : "the CA's name (default: a random one)"),
            Text("--days", "N", issuedByCa
                ? "how long the certificate is valid, in days: 1 to 36500, default 365, never past the CA's own expiry"
                : "how long the certificate is valid, in days: 1 to 36500, default 3650"),
        };
        if (issuedByCa)
        {
            options.Add(PathText("--ca", "DIR", "the directory of 'actorqueue cert ca'"));
        }

        var command = new Command(name, description);
        options.ForEach(command.Add);
        command.SetAction(result =>
        {
            var values = options.Where(o => result.GetResult(o) is not null).ToDictionary(o => o.Name, o => result.GetValue(o) ?? "", StringComparer.Ordinal);
            return CertCommand.Run(name, values, Console.Out, Console.Error);
        });
        return command;
    }
}
