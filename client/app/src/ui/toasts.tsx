// Toasts: short notices in a polite live region, each dismissable and gone after a while.
import { createContext, type ReactNode, useCallback, useContext, useState } from 'react';
import { Link } from '../router';

interface Toast {
  id: number;
  text: string;
  href?: string;
}

const ToastContext = createContext<(text: string, href?: string) => void>(() => {});

export function ToastProvider(props: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const push = useCallback((text: string, href?: string) => {
    const id = Date.now() + Math.random();
    setToasts((t) => [...t.slice(-3), { id, text, href }]);
    setTimeout(() => setToasts((t) => t.filter((x) => x.id !== id)), 8000);
  }, []);
  return (
    <ToastContext.Provider value={push}>
      {props.children}
      <section className="toasts" aria-live="polite" aria-label="Notices">
        {toasts.map((t) => (
          <div className="toast" key={t.id} data-testid="toast">
            {t.href ? <Link to={t.href}>{t.text}</Link> : <span>{t.text}</span>}
            <button
              type="button"
              aria-label="Dismiss"
              onClick={() => setToasts((all) => all.filter((x) => x.id !== t.id))}
            >
              ×
            </button>
          </div>
        ))}
      </section>
    </ToastContext.Provider>
  );
}

export function useToast() {
  return useContext(ToastContext);
}
