// Small building blocks shared by the screens: fields, states, badges, headers.
import {
  useEffect,
  useId,
  useState,
  type InputHTMLAttributes,
  type ReactNode,
  type SelectHTMLAttributes,
  type TextareaHTMLAttributes,
} from "react";
import type { Role } from "../api/models";
import { initials } from "../lib/format";

interface FieldShell {
  label: string;
  error?: string | undefined;
  hint?: ReactNode;
  /** Extra content at the label's right (e.g. a "Forgot password?" link). */
  aside?: ReactNode;
}

function describedBy(id: string, error?: string, hint?: ReactNode): string | undefined {
  const ids = [error ? `${id}-error` : null, hint ? `${id}-hint` : null].filter(Boolean);
  return ids.length ? ids.join(" ") : undefined;
}

function FieldFrame({
  id,
  label,
  error,
  hint,
  aside,
  children,
}: FieldShell & { id: string; children: ReactNode }) {
  return (
    <div className="field">
      <div className="label-row">
        <label htmlFor={id}>{label}</label>
        {aside}
      </div>
      {children}
      {hint && !error && (
        <div className="hint" id={`${id}-hint`}>
          {hint}
        </div>
      )}
      {error && (
        <div className="error" id={`${id}-error`} role="alert">
          {error}
        </div>
      )}
    </div>
  );
}

export function TextField({
  label,
  error,
  hint,
  aside,
  id: givenId,
  ...input
}: FieldShell & InputHTMLAttributes<HTMLInputElement>) {
  const autoId = useId();
  const id = givenId ?? autoId;
  return (
    <FieldFrame id={id} label={label} error={error} hint={hint} aside={aside}>
      <input
        id={id}
        className="input"
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(id, error, hint)}
        {...input}
      />
    </FieldFrame>
  );
}

export function TextAreaField({
  label,
  error,
  hint,
  id: givenId,
  ...area
}: FieldShell & TextareaHTMLAttributes<HTMLTextAreaElement>) {
  const autoId = useId();
  const id = givenId ?? autoId;
  return (
    <FieldFrame id={id} label={label} error={error} hint={hint}>
      <textarea
        id={id}
        className="textarea"
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(id, error, hint)}
        {...area}
      />
    </FieldFrame>
  );
}

export function SelectField({
  label,
  error,
  hint,
  id: givenId,
  children,
  ...select
}: FieldShell & SelectHTMLAttributes<HTMLSelectElement>) {
  const autoId = useId();
  const id = givenId ?? autoId;
  return (
    <FieldFrame id={id} label={label} error={error} hint={hint}>
      <select
        id={id}
        className="select"
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(id, error, hint)}
        {...select}
      >
        {children}
      </select>
    </FieldFrame>
  );
}

export function Spinner({ label }: { label?: string }) {
  return <span className="spinner" role={label ? "status" : undefined} aria-label={label} />;
}

export function SubmitButton({
  pending,
  children,
  className = "btn btn-primary",
  disabled,
}: {
  pending: boolean;
  children: ReactNode;
  className?: string;
  disabled?: boolean;
}) {
  return (
    <button type="submit" className={className} disabled={pending || disabled} aria-busy={pending}>
      {pending && <span className="spinner" aria-hidden="true" />}
      {children}
    </button>
  );
}

export function Loading({ label = "Loading…" }: { label?: string }) {
  return (
    <div className="loading" role="status">
      <span className="spinner" aria-hidden="true" />
      <span>{label}</span>
    </div>
  );
}

export function SkeletonRows({ rows = 3 }: { rows?: number }) {
  return (
    <div className="card-body" aria-hidden="true" style={{ display: "grid", gap: 14 }}>
      {Array.from({ length: rows }, (_, index) => (
        <div key={index} className="skeleton" style={{ width: `${90 - index * 12}%` }} />
      ))}
    </div>
  );
}

export function EmptyState({
  icon,
  title,
  children,
  action,
}: {
  icon?: ReactNode;
  title: string;
  children?: ReactNode;
  action?: ReactNode;
}) {
  return (
    <div className="empty" data-testid="empty-state">
      {icon}
      <h3>{title}</h3>
      {children && <p>{children}</p>}
      {action && <div className="cta">{action}</div>}
    </div>
  );
}

export function RoleBadge({ role }: { role: Role | null | undefined }) {
  if (!role) return null;
  return (
    <span className={`badge badge-${role}`} data-testid="role-badge">
      {role}
    </span>
  );
}

const AVATAR_COLOURS = ["#2f5bea", "#7a4fd6", "#0e8a7e", "#c2571a", "#b0306a", "#3b7d2a"];

export function Avatar({ name, seed }: { name: string; seed: string }) {
  let hash = 0;
  for (const char of seed) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  const colour = AVATAR_COLOURS[hash % AVATAR_COLOURS.length];
  return (
    <span className="avatar" style={{ background: colour }} aria-hidden="true">
      {initials(name)}
    </span>
  );
}

/** A button that asks "Sure?" in place before doing something destructive. */
export function ConfirmButton({
  children,
  confirmLabel = "Confirm",
  onConfirm,
  pending = false,
  className = "btn btn-sm btn-danger",
  ariaLabel,
}: {
  children: ReactNode;
  confirmLabel?: string;
  onConfirm: () => void;
  pending?: boolean;
  className?: string;
  ariaLabel?: string;
}) {
  const [asking, setAsking] = useState(false);
  useEffect(() => {
    if (!asking) return;
    const timer = window.setTimeout(() => setAsking(false), 5000);
    return () => window.clearTimeout(timer);
  }, [asking]);
  if (asking) {
    return (
      <span style={{ display: "inline-flex", gap: 6 }}>
        <button
          type="button"
          className="btn btn-sm btn-danger solid"
          disabled={pending}
          onClick={() => {
            setAsking(false);
            onConfirm();
          }}
          autoFocus
        >
          {confirmLabel}
        </button>
        <button type="button" className="btn btn-sm" onClick={() => setAsking(false)}>
          Cancel
        </button>
      </span>
    );
  }
  return (
    <button
      type="button"
      className={className}
      disabled={pending}
      aria-label={ariaLabel}
      onClick={() => setAsking(true)}
    >
      {pending && <span className="spinner" aria-hidden="true" />}
      {children}
    </button>
  );
}

export function PageHeader({
  title,
  subtitle,
  breadcrumb,
  badge,
  actions,
}: {
  title: ReactNode;
  subtitle?: ReactNode;
  breadcrumb?: ReactNode;
  badge?: ReactNode;
  actions?: ReactNode;
}) {
  return (
    <header className="page-header">
      <div className="titles">
        {breadcrumb && <nav className="breadcrumb" aria-label="Breadcrumb">{breadcrumb}</nav>}
        <div className="title-row">
          <h1>{title}</h1>
          {badge}
        </div>
        {subtitle && <p className="muted">{subtitle}</p>}
      </div>
      {actions && <div className="actions">{actions}</div>}
    </header>
  );
}
