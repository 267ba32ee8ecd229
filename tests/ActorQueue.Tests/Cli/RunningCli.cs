using System.Diagnostics;
using System.Text;
using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Cli;

/// <summary>
/// A started <c>actorqueue</c> process whose output is collected as it comes, so a test can wait for a line (a node
/// joined, a peer was refused) while the process runs. Disposing kills it if it still runs.
/// </summary>
internal sealed class RunningCli : IDisposable
{
    private readonly Process _process;

    private readonly StringBuilder _output = new();

    private readonly StringBuilder _errors = new();

    private readonly TaskCompletionSource _outputClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private readonly TaskCompletionSource _errorsClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public RunningCli(string workingDirectory, params string[] args)
        : this(workingDirectory, new Dictionary<string, string>(), args)
    {
    }

    public RunningCli(string workingDirectory, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        Args = string.Join(' ', args);
        _process = new Process { StartInfo = CliProcess.StartInfo(workingDirectory, args) };
        foreach (var (name, value) in environment)
        {
            _process.StartInfo.Environment[name] = value;
        }

        _process.OutputDataReceived += (_, line) => Append(_output, line.Data, _outputClosed);
        _process.ErrorDataReceived += (_, line) => Append(_errors, line.Data, _errorsClosed);
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public string Args { get; }

    public int Pid => _process.Id;

    public StreamWriter Input => _process.StandardInput;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public string Errors
    {
        get
        {
            lock (_errors)
            {
                return _errors.ToString();
            }
        }
    }

    /// <summary>
    /// Waits until stderr contains one of <paramref name="texts"/> and returns it; fails naming the process if it exits
    /// or the step times out first.
    /// </summary>
    public async Task<string> WaitForErrorsAsync(params string[] texts)
    {
        string? Seen() => texts.FirstOrDefault(text => Errors.Contains(text, StringComparison.Ordinal));
        await Poll.UntilAsync(() => Seen() is not null || _errorsClosed.Task.IsCompleted,
            ClusterNodes.StepTimeout, () => $"actorqueue {Args} printed one of '{string.Join("', '", texts)}' on stderr; it printed:\n{Errors}", TimeSpan.FromMilliseconds(20));
        return Seen() ?? throw new Xunit.Sdk.XunitException($"actorqueue {Args} exited without printing one of '{string.Join("', '", texts)}':\n{Errors}");
    }

    /// <summary>How often stderr contains <paramref name="text"/> so far.</summary>
    public int Count(string text)
    {
        var errors = Errors;
        var count = 0;
        for (var at = errors.IndexOf(text, StringComparison.Ordinal); at >= 0; at = errors.IndexOf(text, at + text.Length, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }

    /// <summary>Completes when stderr contains <paramref name="text"/> once more than when this was called.</summary>
    public Task NextAsync(string text)
    {
        var before = Count(text);
        return Poll.UntilAsync(() => Count(text) > before, ClusterNodes.StepTimeout, () => $"actorqueue {Args} printed '{text}' once more:\n{Errors}", TimeSpan.FromMilliseconds(20));
    }

    /// <summary>Waits for the process to exit by itself and for its output to be read whole; returns its exit code.</summary>
    public async Task<int> ExitAsync(TimeSpan? within = null)
    {
        using var timeout = new CancellationTokenSource(within ?? TimeSpan.FromSeconds(90));
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
            await Task.WhenAll(_outputClosed.Task, _errorsClosed.Task).WaitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            Assert.Fail($"actorqueue {Args} did not exit: {Errors}");
        }

        return _process.ExitCode;
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
    }

    private static void Append(StringBuilder text, string? line, TaskCompletionSource closed)
    {
        if (line is null)
        {
            closed.TrySetResult();
            return;
        }

        lock (text)
        {
            text.Append(line).Append('\n');
        }
    }
}
