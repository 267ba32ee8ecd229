using System.Collections.Immutable;
using System.Reflection;
using Akka.Actor;
using Akka.Configuration;
using Microsoft.Extensions.Logging;

namespace ActorQueue.Runtime;

/// <summary>
/// The actor systems ActorQueue's facades run on: the embedded process-wide default, or one a caller creates
/// with ActorQueue's configuration underneath its own.
/// </summary>
/// <remarks>
/// The default system starts lazily the first time a facade is created without an <see cref="ActorSystem"/>,
/// reads <c>hocon/actorqueue.conf</c> embedded in this assembly, logs through Serilog's <c>Log.Logger</c>, and is
/// shut down by Akka's coordinated shutdown when the process exits. An application that owns a system (a Generic
/// Host with ActorQueue.Hosting) makes it the default with <see cref="UseAsDefault"/>, so a facade created without
/// <c>system:</c> joins it instead of starting a second, embedded system.
/// </remarks>
public static class ActorQueueRuntime
{
    /// <summary>The name of the embedded default actor system.</summary>
    public const string DefaultSystemName = "actorqueue";

    private const string ConfigResourceName = "ActorQueue.hocon.actorqueue.conf";

    private static readonly Lazy<Config> EmbeddedConfig = new(() => LoadEmbeddedConfig(Assembly.GetExecutingAssembly(), ConfigResourceName));

    private static readonly Lazy<ActorSystem> DefaultSystem = new(() => Create(DefaultSystemName));

    /// <summary>The system set by <see cref="UseAsDefault"/>, innermost first; empty for the embedded default.</summary>
    private static ImmutableList<ActorSystem> s_ambient = [];

    /// <summary>ActorQueue's own configuration (<c>hocon/actorqueue.conf</c>), as embedded in the assembly.</summary>
    public static Config DefaultConfig => EmbeddedConfig.Value;

    /// <summary>
    /// The system facades use when they are given none: the one made default by <see cref="UseAsDefault"/>, else the
    /// embedded process-wide system, started on first use.
    /// </summary>
    public static ActorSystem Default
    {
        get
        {
            return Ambient ?? DefaultSystem.Value;
        }
    }

    /// <summary>The innermost system made default by <see cref="UseAsDefault"/> and not yet released; <c>null</c> for none.</summary>
    internal static ActorSystem? Ambient => Volatile.Read(ref s_ambient) is { Count: > 0 } ambient ? ambient[^1] : null;

    /// <summary>Whether the embedded default system has been started in this process.</summary>
    public static bool IsDefaultStarted => DefaultSystem.IsValueCreated;

    /// <summary>
    /// Makes <paramref name="system"/> the default for facades created without a system, until the returned scope is
    /// disposed (the previous default comes back). Facades created before keep the system they were created on.
    /// </summary>
    /// <param name="system">The application's actor system.</param>
    /// <returns>A scope whose disposal (idempotent) removes <paramref name="system"/> as the default.</returns>
    /// <remarks>ActorQueue.Hosting calls this for the host's system unless <c>UseAsDefaultSystem</c> is off.</remarks>
    public static IDisposable UseAsDefault(ActorSystem system)
    {
        ArgumentNullException.ThrowIfNull(system);
        ImmutableInterlocked.Update(ref s_ambient, static (list, added) => list.Add(added), system);
        return new DefaultScope(system);
    }

    /// <summary>
    /// Sends the log events of facades on <paramref name="system"/> that were given no logger of their own to
    /// <paramref name="loggerFactory"/> (Microsoft.Extensions.Logging) instead of Serilog's static logger; <c>null</c>
    /// goes back to Serilog. Applies to facades already created too. Akka's own log bus is configured apart
    /// (<c>akka.loggers</c>; ActorQueue.Hosting routes it to the same factory).
    /// </summary>
    /// <param name="system">The actor system.</param>
    /// <param name="loggerFactory">The factory; its categories are <c>ActorQueue.Queues</c> for queues.</param>
    public static void UseLoggerFactory(ActorSystem system, ILoggerFactory? loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(system);
        ActorQueueExtension.Get(system).LoggerFactory = loggerFactory;
    }

    /// <summary>
    /// Creates an actor system configured by <paramref name="overrides"/> on top of ActorQueue's defaults.
    /// </summary>
    /// <param name="name">The actor system's name.</param>
    /// <param name="overrides">Configuration that wins over ActorQueue's defaults; <c>null</c> for none.</param>
    /// <returns>A started actor system; the caller owns it and terminates it.</returns>
    public static ActorSystem Create(string name, Config? overrides = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        var config = overrides is null ? DefaultConfig : overrides.WithFallback(DefaultConfig);
        return ActorSystem.Create(name, config);
    }

    /// <summary>The given system, or the embedded default when it is <c>null</c>; ActorQueue's extension is loaded on it.</summary>
    internal static ActorQueueExtension Resolve(ActorSystem? system) => ActorQueueExtension.Get(system ?? Default);

    /// <summary>Removes its system from the defaults once.</summary>
    private sealed class DefaultScope(ActorSystem system) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                ImmutableInterlocked.Update(ref s_ambient, static (list, removed) => list.RemoveAt(list.LastIndexOf(removed)), system);
            }
        }
    }

    /// <summary>Reads a HOCON file embedded in <paramref name="assembly"/>.</summary>
    internal static Config LoadEmbeddedConfig(Assembly assembly, string resourceName)
    {
        using var stream = assembly.GetManifestResourceStream(resourceName)
            ?? throw new InvalidOperationException($"The embedded resource '{resourceName}' is missing from {assembly.GetName().Name}.");
        using var reader = new StreamReader(stream);
        return ConfigurationFactory.ParseString(reader.ReadToEnd());
    }
}
