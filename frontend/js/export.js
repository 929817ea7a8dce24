// Save charts and tables as files, entirely in the browser.

/** Offer `blob` as a download named `filename`. */
export function downloadBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  a.style.display = "none";
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Standalone SVG text for an on-page chart (its styles are inline attributes already). */
export function svgText(svg) {
  const clone = svg.cloneNode(true);
  clone.setAttribute("xmlns", "http://www.w3.org/2000/svg");
  clone.removeAttribute("class");
  for (const el of clone.querySelectorAll("[tabindex]")) el.removeAttribute("tabindex");
  return `<?xml version="1.0" encoding="UTF-8"?>\n${new XMLSerializer().serializeToString(clone)}`;
}

export function saveSvg(svg, filename) {
  downloadBlob(new Blob([svgText(svg)], { type: "image/svg+xml" }), filename);
}

/** Rasterise the chart at `scale`× its viewBox size and download it as PNG. */
export function savePng(svg, filename, scale = 2) {
  const [, , width, height] = svg.getAttribute("viewBox").split(/\s+/).map(Number);
  const url = URL.createObjectURL(new Blob([svgText(svg)], { type: "image/svg+xml" }));
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => {
      const canvas = document.createElement("canvas");
      canvas.width = Math.round(width * scale);
      canvas.height = Math.round(height * scale);
      const ctx = canvas.getContext("2d");
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
      URL.revokeObjectURL(url);
      canvas.toBlob((blob) => {
        if (!blob) return reject(new Error("could not encode PNG"));
        downloadBlob(blob, filename);
        resolve(blob);
      }, "image/png");
    };
    img.onerror = () => {
      URL.revokeObjectURL(url);
      reject(new Error("could not render the chart as an image"));
    };
    img.src = url;
  });
}

function csvCell(value) {
  if (value === null || value === undefined) return "";
  const str = String(value);
  return /[",\r\n]/.test(str) ? `"${str.replace(/"/g, '""')}"` : str;
}

/** CSV text with a header row; `columns` names the keys of each row, in order. */
export function toCsv(rows, columns) {
  const lines = [columns.join(",")];
  for (const row of rows) lines.push(columns.map((c) => csvCell(row[c])).join(","));
  return `${lines.join("\n")}\n`;
}

/** CSV columns for `rows`: the `first` keys, then every other key in the order the rows have them. */
export function csvColumns(rows, first = []) {
  const columns = new Set(first);
  for (const row of rows) for (const key of Object.keys(row)) columns.add(key);
  return [...columns];
}

export function saveCsv(rows, columns, filename) {
  downloadBlob(new Blob([toCsv(rows, columns)], { type: "text/csv" }), filename);
}
