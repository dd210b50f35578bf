import { useEffect, useState } from "react";
import { CheckIcon, CopyIcon } from "./icons";

/** Writes text to the clipboard, with a fallback for browsers without the async API. */
export async function copyText(text: string): Promise<boolean> {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // fall through to the textarea fallback
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } finally {
    area.remove();
  }
  return ok;
}

interface Props {
  text: string;
  label?: string;
  small?: boolean;
  /** Accessible name, e.g. "Copy request id". */
  ariaLabel?: string;
}

export function CopyButton({ text, label = "Copy", small = false, ariaLabel }: Props) {
  const [copied, setCopied] = useState(false);
  useEffect(() => {
    if (!copied) return;
    const timer = window.setTimeout(() => setCopied(false), 2000);
    return () => window.clearTimeout(timer);
  }, [copied]);
  return (
    <button
      type="button"
      className={`btn ${small ? "btn-sm btn-ghost" : ""}`}
      aria-label={ariaLabel ?? label}
      onClick={async () => setCopied(await copyText(text))}
    >
      {copied ? <CheckIcon /> : <CopyIcon />}
      {label && <span aria-live="polite">{copied ? "Copied" : label}</span>}
    </button>
  );
}
