namespace ActorQueue.Tests.Cli;

/// <summary>
/// A cluster's certificates as <c>actorqueue cert</c> writes them, made once per test class: the CA in <c>ca/</c>, and
/// <c>--cert-dir</c> directories <c>coordinator/</c> and <c>worker/</c> with node certificates of that CA.
/// </summary>
public sealed class ClusterCertificateDirectories : IAsyncLifetime
{
    public string Root { get; } = Directory.CreateTempSubdirectory("actorqueue-certs-").FullName;

    public string Authority => Path.Combine(Root, "ca");

    public string Coordinator => Path.Combine(Root, "coordinator");

    public string Worker => Path.Combine(Root, "worker");

    public async Task InitializeAsync()
    {
        await CertAsync("ca", "--out", Authority);
        await Task.WhenAll(
            CertAsync("node", "--ca", Authority, "--name", "coordinator", "--out", Coordinator),
            CertAsync("node", "--ca", Authority, "--name", "worker", "--out", Worker));
    }

    public Task DisposeAsync()
    {
        Directory.Delete(Root, recursive: true);
        return Task.CompletedTask;
    }

    private async Task CertAsync(params string[] args)
    {
        var result = await CliProcess.RunAsync(Root, null, ["cert", .. args]);
        Assert.True(result.ExitCode == 0, $"actorqueue cert {string.Join(' ', args)}: {result.Errors}");
    }
}
