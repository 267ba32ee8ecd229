using System.Text;
using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting;

namespace ActorQueue.Cli.Commands;

/// <summary>
/// <c>--log</c>'s sink: each event formatted and flushed to the file as it comes, appended to a regular file, written in
/// order to anything else that can be opened for writing (a FIFO, <c>/dev/stderr</c> on a pipe or terminal). Serilog's
/// file sink seeks the file it opens, which a pipe cannot do, so it never opened one and every event was lost; its
/// default size limit (1 GB) also drops every later event without a word. A write that fails throws, so Serilog reports
/// it through its self-log (<see cref="LogSinkFailure"/>: said once, the run goes on).
/// </summary>
internal sealed class LogFileSink : ILogEventSink, IDisposable
{
    private readonly Lock _gate = new();
    private readonly ITextFormatter _formatter;
    private readonly StreamWriter _writer;

    /// <summary>Opens <paramref name="path"/> for appending (creating a regular file); throws as <see cref="FileStream"/> does.</summary>
    public LogFileSink(string path, ITextFormatter formatter)
    {
        _formatter = formatter;
        var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
        _writer = new StreamWriter(stream, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
    }

    /// <inheritdoc />
    public void Emit(LogEvent logEvent)
    {
        // Serilog calls sinks from any thread; one event's lines are never split by another's.
        lock (_gate)
        {
            _formatter.Format(logEvent, _writer);
            _writer.Flush();
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_gate)
        {
            _writer.Dispose();
        }
    }
}
