/** Initials on a colour derived from the user id, with an optional presence dot. */
const palette = ['#4f46e5', '#0891b2', '#db2777', '#ea580c', '#16a34a', '#7c3aed', '#0d9488', '#c026d3'];

function colourFor(id: string): string {
  let hash = 0;
  for (const ch of id) hash = (hash * 31 + ch.charCodeAt(0)) | 0;
  return palette[Math.abs(hash) % palette.length]!;
}

export function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  const first = parts[0]?.[0] ?? '?';
  const second = parts.length > 1 ? (parts[parts.length - 1]?.[0] ?? '') : (parts[0]?.[1] ?? '');
  return (first + second).toUpperCase();
}

export function Avatar({
  id,
  name,
  size = 36,
  status,
}: {
  id: string;
  name: string;
  size?: number;
  status?: 'online' | 'away' | 'offline' | null;
}) {
  return (
    <span
      className="avatar"
      style={{ width: size, height: size, fontSize: size * 0.38, background: colourFor(id) }}
      title={name}
    >
      {initials(name)}
      {status ? <span className={`avatar-dot ${status}`} data-status={status} /> : null}
    </span>
  );
}
