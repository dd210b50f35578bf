import type { ReactNode } from "react";
import { Link } from "react-router-dom";
import { LogoMark } from "../../components/icons";

/** The centred card every signed-out screen uses. */
export function AuthFrame({
  title,
  subtitle,
  children,
  footer,
}: {
  title: string;
  subtitle?: ReactNode;
  children: ReactNode;
  footer?: ReactNode;
}) {
  return (
    <div className="auth-screen">
      <main className="card auth-card">
        <Link to="/" className="brand" aria-label="ETP home">
          <LogoMark className="brand-mark" />
          <span>
            ETP
            <small>Experiment Tracking Platform</small>
          </span>
        </Link>
        <header>
          <h1>{title}</h1>
          {subtitle && <p className="muted">{subtitle}</p>}
        </header>
        {children}
        {footer && <div className="switch">{footer}</div>}
      </main>
    </div>
  );
}
